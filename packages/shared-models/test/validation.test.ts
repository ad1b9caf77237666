import { describe, expect, it } from "vitest";
import {
  checkConfigRef,
  checkConfigUrl,
  parseExtraEnv,
  validateBuilderInput,
  validateBuildRequest,
  validateConfigRef,
  validateMilestone,
  validatePassword,
  validateProjectInput,
  validateUserInput,
} from "../src/validation.js";

const base = { name: "debian-live", configUrl: "https://salsa.debian.org/live/config.git", architecture: "amd64" };

function errorsOf(r: { ok: boolean; errors?: Record<string, string> }): Record<string, string> {
  expect(r.ok).toBe(false);
  return (r as { errors: Record<string, string> }).errors;
}

describe("validateProjectInput", () => {
  it("accepts a minimal form and fills the defaults", () => {
    const r = validateProjectInput({ ...base, title: "  Debian live ", extraEnv: "", priority: "", keepLast: "", keepDays: "", scheduleDailyAt: "", scheduleCron: "", scheduleTz: "" });
    expect(r).toEqual({
      ok: true,
      value: {
        ...base,
        title: "Debian live",
        description: "",
        configRef: "main",
        suite: "trixie",
        extraEnv: {},
        priority: 0,
        private: false,
        scheduleDailyAt: null,
        scheduleCron: null,
        scheduleTz: "UTC",
        keepLast: null,
        keepDays: null,
      },
    });
  });

  it("parses every field of a full form", () => {
    const r = validateProjectInput({
      ...base,
      configRef: "release/1.0",
      suite: "bookworm",
      extraEnv: "# mirror\nMIRROR=http://deb.debian.org/debian\n\nIMAGE_FLAVOUR=small=yes\n",
      priority: "-20",
      private: "on",
      scheduleDailyAt: "2:30",
      scheduleTz: "Europe/Berlin",
      keepLast: "10",
      keepDays: 30,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      configRef: "release/1.0",
      suite: "bookworm",
      extraEnv: { MIRROR: "http://deb.debian.org/debian", IMAGE_FLAVOUR: "small=yes" },
      priority: -20,
      private: true,
      scheduleDailyAt: "02:30",
      scheduleTz: "Europe/Berlin",
      keepLast: 10,
      keepDays: 30,
    });
  });

  it("says what is wrong with each field", () => {
    const e = errorsOf(
      validateProjectInput({
        name: "Debian Live",
        title: "x".repeat(201),
        configUrl: "ext::sh -c touch% /tmp/pwned",
        configRef: "-upload-pack=evil",
        architecture: "vax",
        suite: "Trixie!",
        extraEnv: "PATH=/evil",
        priority: "high",
        scheduleDailyAt: "25:00",
        scheduleTz: "Mars/Olympus",
        keepLast: "0",
        keepDays: "-3",
      }),
    );
    expect(e.name).toBe("The name may use lower-case letters, digits and dashes, and must start with a letter or digit.");
    expect(e.title).toBe("The title may be at most 200 characters long.");
    expect(e.configUrl).toBe("The configuration URL may not contain spaces or control characters.");
    expect(e.configRef).toBe("A branch, tag or commit name may not start with a dash.");
    expect(e.architecture).toBe('"vax" is not an architecture lexbuilder knows; choose one of amd64, arm64, armhf, armel, i386, ppc64el, riscv64, s390x.');
    expect(e.suite).toMatch(/^The suite may use lower-case letters/);
    expect(e.extraEnv).toBe("PATH is set by the builder itself or is not allowed; choose another name.");
    expect(e.priority).toBe("The priority must be a whole number between -1000 and 1000.");
    expect(e.scheduleDailyAt).toBe("The daily time must be HH:MM on a 24-hour clock, for example 02:30.");
    expect(e.scheduleTz).toBe('"Mars/Olympus" is not a time zone; use an IANA name such as Europe/Berlin or UTC.');
    expect(e.keepLast).toBe("Keep last must be a whole number of at least 1, or empty to keep everything.");
    expect(e.keepDays).toMatch(/^Keep days must be a whole number/);
    expect(errorsOf(validateProjectInput({ ...base, name: "" })).name).toBe("Give the project a name.");
    expect(errorsOf(validateProjectInput({ ...base, name: "a".repeat(64) })).name).toBe("The name may be at most 63 characters long.");
    expect(errorsOf(validateProjectInput({ ...base, name: "-x" })).name).toMatch(/must start with a letter or digit/);
  });

  it("checks cron expressions with node-cron and wants exactly five fields", () => {
    expect(validateProjectInput({ ...base, scheduleCron: "30  2 * * 1-5" })).toMatchObject({ ok: true, value: { scheduleCron: "30 2 * * 1-5" } });
    expect(errorsOf(validateProjectInput({ ...base, scheduleCron: "0 30 2 * * 1-5" })).scheduleCron).toMatch(/exactly five fields/);
    expect(errorsOf(validateProjectInput({ ...base, scheduleCron: "61 2 * * *" })).scheduleCron).toMatch(/^The cron expression is not valid/);
    expect(errorsOf(validateProjectInput({ ...base, scheduleCron: "every day" })).scheduleCron).toMatch(/exactly five fields/);
    expect(errorsOf(validateProjectInput({ ...base, scheduleCron: "0 2 * * *", scheduleDailyAt: "02:00" })).scheduleCron).toBe(
      "Give either a daily time or a cron expression, not both.",
    );
  });

  it("validates only the given fields in partial mode", () => {
    expect(validateProjectInput({ priority: 5 }, { partial: true })).toEqual({ ok: true, value: { priority: 5 } });
    expect(validateProjectInput({ keepLast: "" }, { partial: true })).toEqual({ ok: true, value: { keepLast: null } });
    expect(errorsOf(validateProjectInput({ configRef: "" }, { partial: true })).configRef).toMatch(/^Give a branch, tag or commit/);
    expect(validateProjectInput({}, { partial: true })).toEqual({ ok: true, value: {} });
  });
});

describe("checkConfigUrl", () => {
  it("accepts the allowed schemes and scp-like ssh", () => {
    for (const url of ["https://example.org/c.git", "http://example.org:8080/c", "git://example.org/c.git", "ssh://git@example.org/c.git", "git@example.org:live/config.git"]) {
      expect(checkConfigUrl(url), url).toEqual({ value: url });
    }
  });

  it("refuses transports, options, other schemes and junk, with a reason", () => {
    expect(checkConfigUrl("ext::sh -c evil").error).toMatch(/spaces or control characters/);
    expect(checkConfigUrl("ext::sh%20-c%20evil").error).toBe("Remote-helper transports such as ext:: and fd:: are not allowed; use a URL with one of: https, http, git, ssh.");
    expect(checkConfigUrl("fd::17").error).toMatch(/Remote-helper transports/);
    expect(checkConfigUrl("--upload-pack=touch /tmp/x").error).toMatch(/spaces/);
    expect(checkConfigUrl("--upload-pack=evil").error).toBe("The configuration URL may not start with a dash; give a URL such as https://example.org/config.git.");
    expect(checkConfigUrl("file:///srv/config.git").error).toBe("The scheme file:// is not allowed for configuration URLs; use one of: https, http, git, ssh.");
    expect(checkConfigUrl("file:///srv/config.git", ["https", "file"])).toEqual({ value: "file:///srv/config.git" });
    expect(checkConfigUrl("git@example.org:c.git", ["https"]).error).toBe("The configuration URL must start with one of https://.");
    expect(checkConfigUrl("https://exa mple.org/").error).toMatch(/spaces/);
    expect(checkConfigUrl("https://example.org/\u0000").error).toMatch(/control characters/);
    expect(checkConfigUrl("").error).toMatch(/^Give the URL/);
    expect(checkConfigUrl("ssh://-oProxyCommand=touch%20x/repo").error).toBe("The host and user name of the configuration URL may not start with a dash.");
    expect(checkConfigUrl("ssh://-oProxyCommand=x@host/repo").error).toBe("The host and user name of the configuration URL may not start with a dash.");
    expect(checkConfigUrl("ssh://%2doProxyCommand=x@host/repo").error).toMatch(/may not start with a dash/);
    expect(checkConfigUrl("ssh://%E0%A4%A@host/repo")).toEqual({ value: "ssh://%E0%A4%A@host/repo" });
    expect(checkConfigUrl("git@-evil:repo").error).toMatch(/must start with one of/);
    expect(checkConfigUrl("https://[::1]:8443/config.git")).toEqual({ value: "https://[::1]:8443/config.git" });
    expect(checkConfigUrl("https://" + "a".repeat(2000)).error).toBe("The configuration URL may be at most 2000 characters long.");
  });
});

describe("checkConfigRef", () => {
  it("follows git's ref rules", () => {
    for (const ok of ["main", "release/1.0", "v1.0.0", "0123456789abcdef0123456789abcdef01234567", "feature_x-y"]) {
      expect(checkConfigRef(ok), ok).toEqual({ value: ok });
    }
    for (const bad of ["-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "@", "a@{1}", "a//b", "a/", "/a", "a.", "a.lock", "a/.hidden", "x\u0001"]) {
      expect(checkConfigRef(bad).error, bad).toBeDefined();
    }
    expect(checkConfigRef("a..b").error).toMatch(/^A branch, tag or commit may use letters/);
    expect(validateConfigRef("main")).toEqual({ ok: true, value: "main" });
    expect(validateConfigRef("")).toEqual({ ok: false, errors: { configRef: "Give a branch, tag or commit to build (for example main)." } });
  });
});

describe("parseExtraEnv", () => {
  it("takes lines or an object and refuses bad or reserved names", () => {
    // Lines are trimmed at both ends (trailing blanks in a textarea are accidents); the value keeps inner blanks.
    expect(parseExtraEnv("A=1\r\nB_2= spaced out \n")).toEqual({ value: { A: "1", B_2: " spaced out" } });
    expect(parseExtraEnv({ X: "y" })).toEqual({ value: { X: "y" } });
    expect(parseExtraEnv(null)).toEqual({ value: {} });
    expect(parseExtraEnv("lower=1").error).toBe('The variable name "lower" is not valid; use upper-case letters, digits and _, not starting with a digit.');
    expect(parseExtraEnv("1A=1").error).toMatch(/^The variable name .* is not valid/);
    expect(parseExtraEnv("novalue").error).toBe("Line 1 of the environment is not NAME=value; write one variable per line, as in MIRROR=http://deb.debian.org/debian.");
    for (const reserved of ["PROJECT", "ARCH", "SUITE", "NOW", "SOURCE_DATE_EPOCH", "PATH", "LD_PRELOAD", "HOME", "LD_ANYTHING", "GIT_SSH_COMMAND"]) {
      expect(parseExtraEnv(`${reserved}=x`).error, reserved).toBe(`${reserved} is set by the builder itself or is not allowed; choose another name.`);
    }
    expect(parseExtraEnv("A=1\nA=2").error).toBe("A is given twice; keep one.");
    expect(parseExtraEnv({ A: 5 }).error).toBe("The value of A must be text.");
    expect(parseExtraEnv({ A: "x\ny" }).error).toMatch(/line breaks/);
    expect(parseExtraEnv({ __proto__: "x" } as unknown as Record<string, string>)).toEqual({ value: {} });
    expect(parseExtraEnv(JSON.parse('{"__proto__": "x"}')).error).toMatch(/^The variable name .* is not valid/);
  });
});

describe("validateBuilderInput", () => {
  it("accepts a builder and explains each refusal", () => {
    expect(validateBuilderInput({ name: "builder-1.lab", url: "http://127.0.0.1:8221/", token: " abc " })).toEqual({
      ok: true,
      value: { name: "builder-1.lab", url: "http://127.0.0.1:8221", token: "abc" },
    });
    const e = errorsOf(validateBuilderInput({ name: "Builder 1", url: "ftp://x", token: "" }));
    expect(e.name).toMatch(/^The builder name may use lower-case letters/);
    expect(e.url).toBe("The builder URL must start with http:// or https://.");
    expect(e.token).toMatch(/^Paste the builder's token/);
    expect(errorsOf(validateBuilderInput({ name: "b", url: "not a url", token: "t" })).url).toMatch(/not a valid URL/);
    expect(errorsOf(validateBuilderInput({ name: "b", url: "http://u:p@host:8221", token: "t" })).url).toBe("Put the builder's token in the token field, not in the URL.");
    expect(errorsOf(validateBuilderInput({ name: "b", url: "http://host", token: "a b" })).token).toMatch(/spaces/);
  });
});

describe("validateUserInput and passwords", () => {
  it("checks name, role and password", () => {
    expect(validateUserInput({ name: "alice", role: "admin", password: "correct horse" })).toEqual({
      ok: true,
      value: { name: "alice", role: "admin", password: "correct horse" },
    });
    const e = errorsOf(validateUserInput({ name: "A", role: "root", password: "short" }));
    expect(e.name).toBe("The user name must be 2 to 32 characters: lower-case letters, digits and _ . -, starting with a letter.");
    expect(e.role).toBe("Choose a role: admin, builder, viewer.");
    expect(e.password).toBe("The password must be at least 10 characters long.");
    expect(validateUserInput({ name: "bob", role: "viewer", password: "" }, { passwordOptional: true })).toEqual({
      ok: true,
      value: { name: "bob", role: "viewer", password: null },
    });
    expect(validatePassword("123456789").ok).toBe(false);
    expect(validatePassword("1234567890")).toEqual({ ok: true, value: "1234567890" });
  });
});

describe("milestones and build requests", () => {
  it("validates milestone names and build request bodies", () => {
    expect(validateMilestone(" 1.0 ")).toEqual({ ok: true, value: "1.0" });
    expect(validateMilestone("")).toEqual({ ok: false, errors: { milestone: "Give the milestone a name (for example 1.0 or beta-2)." } });
    expect(validateMilestone("x".repeat(101)).ok).toBe(false);
    expect(validateMilestone("a\u0007b").ok).toBe(false);
    expect(validateBuildRequest({})).toEqual({ ok: true, value: { milestone: null, configRef: null } });
    expect(validateBuildRequest({ milestone: "beta-2", configRef: "v1" })).toEqual({ ok: true, value: { milestone: "beta-2", configRef: "v1" } });
    expect(errorsOf(validateBuildRequest({ configRef: "--exec" })).configRef).toMatch(/dash/);
  });
});

describe("cron expressions the scheduler cannot run", () => {
  it("are refused with a sentence, so a saved schedule always fires", async () => {
    const { checkCron } = await import("../src/validation.js");
    expect(checkCron("30 2 * * 1-5")).toEqual({ value: "30 2 * * 1-5" });
    for (const bad of ["0 0 L * *", "0 0 * * 1#2", "0 0 15W * *"]) {
      const r = checkCron(bad);
      expect("error" in r && r.error, bad).toMatch(/^The cron expression/);
    }
  });
});
