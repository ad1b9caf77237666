// Environment readers: good values parse; every bad value is a ConfigError whose message is one
// sentence that starts with the variable's name. loadConfigOrExit is checked in a real process.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  ConfigError,
  parseListen,
  readBoolean,
  readDatabaseUrl,
  readInteger,
  readList,
  readListen,
  readOptionalString,
  readString,
} from "../src/config.js";

/** The error `fn` throws: a ConfigError, one sentence, naming `variable` first. */
function sentence(fn: () => unknown, variable: string): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const message = (caught as ConfigError).message;
  expect(message.startsWith(`${variable} `)).toBe(true);
  expect(message).toMatch(/^[^\n]*\.$/);
  // One sentence: no full stop followed by another sentence inside it.
  expect(message.slice(0, -1)).not.toMatch(/\.\s+[A-Z]/);
  return message;
}

describe("readString / readOptionalString", () => {
  it("reads, trims, falls back", () => {
    expect(readString({ A: "  x  " }, "A")).toBe("x");
    expect(readString({}, "A", "fallback")).toBe("fallback");
    expect(readString({ A: "   " }, "A", "fallback")).toBe("fallback");
    expect(readOptionalString({ A: "" }, "A")).toBeUndefined();
    expect(readOptionalString({ A: "v" }, "A")).toBe("v");
  });
  it("a missing value names the variable", () => {
    expect(sentence(() => readString({}, "LEXBUILDER_X"), "LEXBUILDER_X")).toBe(
      "LEXBUILDER_X is not set; set it in the environment or in /etc/lexbuilder/*.env.",
    );
    sentence(() => readString({ LEXBUILDER_X: " \t " }, "LEXBUILDER_X"), "LEXBUILDER_X");
  });
});

describe("readInteger", () => {
  it("reads whole numbers within bounds, or the fallback", () => {
    expect(readInteger({ N: "42" }, "N", 1, 0, 100)).toBe(42);
    expect(readInteger({ N: "-3" }, "N", 1, -5, 5)).toBe(-3);
    expect(readInteger({}, "N", 7, 0, 100)).toBe(7);
    expect(readInteger({ N: "100" }, "N", 7, 0, 100)).toBe(100);
  });
  it("refuses non-numbers and values out of range, quoting what was written", () => {
    expect(sentence(() => readInteger({ N: "12s" }, "N", 1, 0, 100), "N")).toBe('N must be a whole number, not "12s".');
    sentence(() => readInteger({ N: "1.5" }, "N", 1, 0, 100), "N");
    sentence(() => readInteger({ N: "1e3" }, "N", 1, 0, 10000), "N");
    expect(sentence(() => readInteger({ N: "101" }, "N", 1, 0, 100), "N")).toBe("N must be between 0 and 100, not 101.");
    expect(sentence(() => readInteger({ N: "99999999999999999999999" }, "N", 1, 0, 100), "N")).toBe(
      "N must be between 0 and 100, not 99999999999999999999999.",
    );
  });
});

describe("readBoolean", () => {
  it("reads the usual spellings", () => {
    for (const v of ["1", "true", "YES", "on"]) expect(readBoolean({ B: v }, "B", false)).toBe(true);
    for (const v of ["0", "False", "no", "OFF"]) expect(readBoolean({ B: v }, "B", true)).toBe(false);
    expect(readBoolean({}, "B", true)).toBe(true);
  });
  it("refuses anything else", () => {
    expect(sentence(() => readBoolean({ B: "maybe" }, "B", false), "B")).toBe('B must be true or false, not "maybe".');
  });
});

describe("readListen / parseListen", () => {
  it("reads host:port, [v6]:port and :port", () => {
    expect(readListen({ L: "127.0.0.1:8080" }, "L", "x")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(readListen({ L: "[::1]:9" }, "L", "x")).toEqual({ host: "::1", port: 9 });
    expect(readListen({ L: ":8221" }, "L", "x")).toEqual({ host: "0.0.0.0", port: 8221 });
    expect(readListen({}, "L", "localhost:1")).toEqual({ host: "localhost", port: 1 });
    expect(readListen({ L: "127.0.0.1:0" }, "L", "x").port).toBe(0);
  });
  it("refuses what is not host:port", () => {
    for (const bad of ["8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http", "a b:80", "[::1:80", "http://x:80"]) {
      expect(sentence(() => readListen({ LEXBUILDER_WEBAPP_LISTEN: bad }, "LEXBUILDER_WEBAPP_LISTEN", "x"), "LEXBUILDER_WEBAPP_LISTEN")).toMatch(
        /must look like host:port \(for example 127\.0\.0\.1:8080\)/,
      );
    }
    sentence(() => parseListen("LEXBUILDER_SLAVE_LISTEN", "nope"), "LEXBUILDER_SLAVE_LISTEN");
  });
});

describe("readDatabaseUrl", () => {
  it("reads postgres URLs", () => {
    expect(readDatabaseUrl({ DATABASE_URL: "postgres://u:p@127.0.0.1:5432/db" })).toBe("postgres://u:p@127.0.0.1:5432/db");
    expect(readDatabaseUrl({ DATABASE_URL: "postgresql:///db?host=/run/postgresql" })).toBe("postgresql:///db?host=/run/postgresql");
  });
  it("refuses a missing, foreign or broken URL without repeating it", () => {
    sentence(() => readDatabaseUrl({}), "DATABASE_URL");
    expect(sentence(() => readDatabaseUrl({ DATABASE_URL: "mysql://u:hunter2@h/db" }), "DATABASE_URL")).not.toContain("hunter2");
    const broken = sentence(() => readDatabaseUrl({ DATABASE_URL: "postgres://u:hunter2@h:99999/db" }), "DATABASE_URL");
    expect(broken).toMatch(/not a valid URL/);
    expect(broken).not.toContain("hunter2");
  });
});

describe("readList", () => {
  it("splits on commas and trims", () => {
    expect(readList({ S: " https, file ,git" }, "S", ["x"])).toEqual(["https", "file", "git"]);
    expect(readList({}, "S", ["x"])).toEqual(["x"]);
  });
  it("refuses a list of nothing", () => {
    expect(sentence(() => readList({ LEXBUILDER_SLAVE_ALLOWED_SCHEMES: " , ," }, "LEXBUILDER_SLAVE_ALLOWED_SCHEMES", ["https"]), "LEXBUILDER_SLAVE_ALLOWED_SCHEMES")).toBe(
      'LEXBUILDER_SLAVE_ALLOWED_SCHEMES must be a comma-separated list, not ", ,".',
    );
  });
});

describe("loadConfigOrExit in a real process", () => {
  const dist = fileURLToPath(new URL("../dist/config.js", import.meta.url));
  const run = (env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(dist)});
         const cfg = m.loadConfigOrExit(() => ({ n: m.readInteger(process.env, "LEXBUILDER_N", 1, 0, 5) }), "lexbuilder-test");
         process.stdout.write(JSON.stringify(cfg));`,
      ],
      { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", timeout: 20_000 },
    );

  it("prints the one-sentence reason and exits 2", () => {
    const r = run({ LEXBUILDER_N: "9" });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("lexbuilder-test: LEXBUILDER_N must be between 0 and 5, not 9.\n");
    expect(r.stdout).toBe("");
  });

  it("returns the config when it is valid", () => {
    const r = run({ LEXBUILDER_N: "4" });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ n: 4 });
  });
});
