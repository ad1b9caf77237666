// The slave's pieces on their own: URL and ref checks, scrubbing, result kinds, Range parsing,
// configuration, the cache, and killing/unmounting a real process tree.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "@lexbuilder/shared-models/config";
import { BuildLog, scrub } from "../src/buildlog.js";
import { ResultCache, sha256File } from "../src/cache.js";
import { readSlaveConfig } from "../src/config.js";
import { resultKind } from "../src/livebuild.js";
import { findBuildProcesses, killBuild, MARKER_VARIABLE, mountsUnder, spawnInGroup, unmountUnder } from "../src/processes.js";
import { environHas, readProcFile } from "../src/procfs.js";
import { sleep, tempDir } from "./helpers.js";

describe("scrub", () => {
  it("hides user:pass in URLs and the given secrets", () => {
    expect(scrub("fetching https://bob:hunter2@mirror.example/debian now")).toBe("fetching https://***@mirror.example/debian now");
    expect(scrub("a ftp://u:@h/ b")).toBe("a ftp://***@h/ b");
    expect(scrub("git@example.org:x https://example.org/")).toBe("git@example.org:x https://example.org/");
    expect(scrub("token 0123456789abcdef here", ["0123456789abcdef"])).toBe("token *** here");
  });
  it("scrubs a credential split across output chunks", () => {
    const path = join(tempDir("log"), "build.log");
    let changes = 0;
    const log = new BuildLog(path, [], () => changes++);
    log.output(Buffer.from("Get:1 https://us"));
    log.output(Buffer.from("er:pa"));
    log.output(Buffer.from("ss@mirror.example/debian bookworm\nnext line"));
    log.line("RUN: lb build");
    log.close();
    expect(readFileSync(path, "utf8")).toBe("Get:1 https://***@mirror.example/debian bookworm\nnext line\nRUN: lb build\n");
    expect(log.size).toBe(readFileSync(path).length);
    expect(changes).toBeGreaterThan(0);
  });
  it("keeps bytes that are not UTF-8 unchanged", () => {
    const path = join(tempDir("log"), "build.log");
    const log = new BuildLog(path, [], () => {});
    const bytes = Buffer.from([0x41, 0xff, 0xfe, 0x0a]);
    log.output(bytes);
    log.close();
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });
});

describe("result files", () => {
  it.each([
    ["live-image-amd64.hybrid.iso", "image"],
    ["live-image-amd64.iso", "image"],
    ["live-image-amd64.img", "image"],
    ["live-image-amd64.tar.tar.gz", "image"],
    ["live-image-amd64.tar.tar", "image"],
    ["live-image-amd64.netboot.tar.xz", "image"],
    ["live-image-amd64.packages", "manifest"],
    ["live-image-amd64.files", "files"],
    ["live-image-amd64.contents", "contents"],
    ["live-image-amd64.hybrid.iso.zsync", "other"],
  ])("%s is %s", (name, kind) => {
    expect(resultKind(name, "amd64")).toBe(kind);
  });
  it("ignores other architectures and other names", () => {
    expect(resultKind("live-image-arm64.iso", "amd64")).toBeNull();
    expect(resultKind("chroot.packages.live", "amd64")).toBeNull();
    expect(resultKind("live-image-amd64.", "amd64")).toBeNull();
  });
});

describe("configuration", () => {
  it("has the documented defaults", () => {
    const c = readSlaveConfig({});
    expect(c).toMatchObject({
      listen: { host: "0.0.0.0", port: 8221 },
      stateDir: "/var/lib/lexbuilder-slave",
      tokenFile: "/etc/lexbuilder/slave.token",
      lb: "lb",
      allowedSchemes: ["https", "http", "git", "ssh"],
      buildTimeoutSeconds: 14400,
      abortDeadlineSeconds: 10,
      minFreeDiskBytes: 8 * 1024 ** 3,
      cacheMaxAgeSeconds: 172800,
      architectures: null,
      tls: null,
    });
  });
  it("reads sizes with suffixes and lists", () => {
    const c = readSlaveConfig({ LEXBUILDER_SLAVE_MIN_FREE_DISK: "20M", LEXBUILDER_SLAVE_ALLOWED_SCHEMES: "HTTPS, file", LEXBUILDER_SLAVE_ARCHITECTURES: "amd64,arm64" });
    expect(c.minFreeDiskBytes).toBe(20 * 1024 * 1024);
    expect(c.allowedSchemes).toEqual(["https", "file"]);
    expect(c.architectures).toEqual(["amd64", "arm64"]);
    expect(readSlaveConfig({ LEXBUILDER_SLAVE_MIN_FREE_DISK: "1GiB" }).minFreeDiskBytes).toBe(1024 ** 3);
  });
  it("refuses bad values with a ConfigError", () => {
    expect(() => readSlaveConfig({ LEXBUILDER_SLAVE_ABORT_DEADLINE: "0" })).toThrow(ConfigError);
    expect(() => readSlaveConfig({ LEXBUILDER_SLAVE_TLS_CERT: "/x", LEXBUILDER_SLAVE_TLS_KEY: "/y" })).toThrow(/does not exist/);
  });
});

describe("the cache", () => {
  it("moves files in under their sha256, links the log, and sweeps old entries", async () => {
    const dir = tempDir("cache");
    const cache = new ResultCache(join(dir, "cache"));
    await cache.init();
    const a = join(dir, "a.iso");
    writeFileSync(a, "image bytes");
    const stored = await cache.moveIn(a);
    expect(stored.sha256).toBe((await sha256File(cache.pathOf(stored.sha256)!)).sha256);
    expect(stored.size).toBe(11);
    expect(existsSync(a)).toBe(false);
    const log = join(dir, "build.log");
    writeFileSync(log, "log");
    const l = await cache.linkIn(log);
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(cache.pathOf(l.sha256)!, "utf8")).toBe("log");
    expect(cache.pathOf("../x")).toBeNull();
    expect(cache.pathOf("A".repeat(64))).toBeNull();
    const old = new Date(Date.now() - 10_000);
    utimesSync(cache.pathOf(stored.sha256)!, old, old);
    utimesSync(cache.pathOf(l.sha256)!, old, old);
    expect(await cache.sweep(5_000, new Set([l.sha256]))).toEqual([stored.sha256]);
    expect(existsSync(cache.pathOf(l.sha256)!)).toBe(true);
  });
});

describe("reading /proc", () => {
  const env = (...entries: string[]) => Buffer.from(entries.map((e) => e + "\0").join(""), "latin1");
  const entry = Buffer.from(`${MARKER_VARIABLE}=7-1.ab`, "latin1");
  it.each([
    ["first", env(`${MARKER_VARIABLE}=7-1.ab`, "PATH=/bin"), true],
    ["in the middle", env("A=1", `${MARKER_VARIABLE}=7-1.ab`, "PATH=/bin"), true],
    ["last, with no closing NUL", Buffer.from(`A=1\0${MARKER_VARIABLE}=7-1.ab`, "latin1"), true],
    ["absent", env("A=1", "PATH=/bin"), false],
    ["another build's value that starts the same", env(`${MARKER_VARIABLE}=7-1.abc`), false],
    ["the text inside another variable", env(`X${MARKER_VARIABLE}=7-1.ab`), false],
    ["the text as another variable's value", env(`NOTE=${MARKER_VARIABLE}=7-1.ab`), false],
    ["a miss before a hit", env(`X${MARKER_VARIABLE}=7-1.ab`, `${MARKER_VARIABLE}=7-1.ab`), true],
    ["empty", Buffer.alloc(0), false],
  ])("finds the marker entry: %s", (_, environ, expected) => {
    expect(environHas(environ, entry)).toBe(expected);
  });

  it("reads a process's whole environment, however large, and nothing for a process that is gone", async () => {
    // One variable may hold at most 128 KiB (MAX_ARG_STRLEN): three of 100 000 bytes.
    const big = "x".repeat(100_000);
    const marker = `procfs.${process.pid}.${Date.now()}`;
    const child = spawnInGroup("sleep", ["30"], {
      cwd: "/",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", BIG1: big, BIG2: big, BIG3: big, [MARKER_VARIABLE]: marker },
      onOutput: () => {},
    });
    try {
      await sleep(50);
      const environ = readProcFile(`/proc/${child.pid}/environ`)!;
      expect(environ.length).toBeGreaterThan(300_000);
      expect(environHas(environ, Buffer.from(`${MARKER_VARIABLE}=${marker}`))).toBe(true);
      expect(findBuildProcesses({ groups: [], marker })).toEqual([child.pid]);
    } finally {
      process.kill(child.pid!, "SIGKILL");
    }
    await child.exited;
    expect(readProcFile(`/proc/${child.pid}/environ`)).toBeNull();
    expect(readProcFile("/proc/0/stat")).toBeNull();
  });
});

describe("processes", () => {
  it("kills a tree: group members, descendants, a setsid escapee and a TERM-ignoring child", async () => {
    const marker = `unit.${process.pid}.${Date.now()}`;
    const script = `
      trap '' TERM
      ( trap '' TERM; sleep 300 ) &
      bash -c 'sleep 300' &
      setsid -f sleep 301
      echo started
      wait`;
    let output = "";
    const running = spawnInGroup("bash", ["-c", script], {
      cwd: "/",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", [MARKER_VARIABLE]: marker },
      onOutput: (c) => (output += c.toString()),
    });
    while (!output.includes("started")) await sleep(20);
    await sleep(100);
    const spec = { groups: [running.pid!], marker };
    const found = findBuildProcesses(spec);
    expect(found.length).toBeGreaterThanOrEqual(4);
    // The escapee is found although it left the group (by its marker).
    const sessions = found.map((pid) => readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]!.split(" ")[3]);
    expect(new Set(sessions).size).toBe(2);
    const t0 = Date.now();
    const result = await killBuild(spec, 5000, 500);
    expect(result.survivors).toEqual([]);
    expect(result.signalled).toBeGreaterThanOrEqual(4);
    expect(Date.now() - t0).toBeLessThan(4500);
    expect(findBuildProcesses(spec)).toEqual([]);
    expect((await running.exited).signal).toBe("SIGKILL");
  });

  it("finds what a finished command left in its group, and nothing once the group is empty", async () => {
    const running = spawnInGroup("bash", ["-c", "sleep 300 & echo left"], { cwd: "/", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, onOutput: () => {} });
    expect((await running.exited).code).toBe(0);
    const spec = { groups: [running.pid!] };
    const left = findBuildProcesses(spec);
    expect(left).toHaveLength(1);
    expect(readFileSync(`/proc/${left[0]}/cmdline`, "latin1")).toContain("sleep");
    const result = await killBuild(spec, 5000, 500);
    expect(result).toEqual({ survivors: [], signalled: 1 });
    expect(findBuildProcesses(spec)).toEqual([]);
  });

  it("reports the exit status of the command itself and a missing command", async () => {
    const r = spawnInGroup("bash", ["-c", "echo out; echo err >&2; exit 7"], { cwd: "/", env: { PATH: "/usr/bin:/bin" }, onOutput: () => {} });
    expect(await r.exited).toEqual({ code: 7, signal: null });
    const missing = spawnInGroup("/nonexistent/lb", [], { cwd: "/", env: {}, onOutput: () => {} });
    expect((await missing.exited).spawnError?.code).toBe("ENOENT");
  });

  it.skipIf(process.getuid?.() !== 0)("unmounts everything under a directory, deepest first", async () => {
    const dir = tempDir("mounts");
    mkdirSync(join(dir, "chroot", "proc"), { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "t1", join(dir, "chroot")]);
    mkdirSync(join(dir, "chroot", "proc"));
    execFileSync("mount", ["-t", "tmpfs", "t2", join(dir, "chroot", "proc")]);
    expect(mountsUnder(dir)).toEqual([join(dir, "chroot", "proc"), join(dir, "chroot")]);
    const r = await unmountUnder(dir);
    expect(r.unmounted).toEqual([join(dir, "chroot", "proc"), join(dir, "chroot")]);
    expect(r.remaining).toEqual([]);
  });
});
