// Builds through the real daemon with the fake lb: success, failures of every class, timeout,
// abort of a process tree, downloads with Range, the log endpoint, clean and the age limit.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcFault } from "@lexbuilder/shared-models/protocol";
import {
  COMMIT_EPOCH,
  FAKE_LB,
  fakeConf,
  get,
  makeConfigRepo,
  mountsBelow,
  processesOfBuild,
  sleep,
  startSlave,
  waitForState,
  type ConfigRepo,
  type Slave,
} from "./helpers.js";

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

let repo: ConfigRepo;
let slave: Slave;

beforeAll(async () => {
  repo = makeConfigRepo({
    main: fakeConf(["sleep=1", "echo-env=MIRROR_URL"]),
    "lb-fails": fakeConf(["fail-at=build", "exit=3"]),
    "config-fails": fakeConf(["fail-at=config", "exit=2"]),
    "no-image": fakeConf(["no-image=yes"]),
    slow: fakeConf(["sleep=300", "mount=yes", "escape=yes", "ignore-term=yes"]),
    "auto-config": {
      ...fakeConf([]),
      "auto/config": '#!/bin/sh\nset -e\necho "auto/config ran for $PROJECT"\nexec "$LB" config noauto "$@"\n',
    },
  });
  slave = await startSlave();
});

afterAll(async () => {
  await slave?.stop();
});

async function buildAndWait(cookie: string, args: Record<string, unknown>) {
  await slave.client.call("build", cookie, { project: "demo", configUrl: repo.url, architecture: "amd64", ...args } as never);
  const s = await waitForState(slave.client, "WAITING", 40_000);
  expect(s.cookie).toBe(cookie);
  return s;
}

async function clean(cookie: string) {
  expect(await slave.client.call("clean", cookie)).toEqual({ state: "IDLE" });
}

describe("a successful build", () => {
  it("clones, runs lb with the right environment, and offers hashed results", async () => {
    const secretUrl = "https://builder:s3cr3t-pass@mirror.example.invalid/debian";
    const s = await buildAndWait("1-1", { configRef: "main", suite: "bookworm", env: { MIRROR_URL: secretUrl } });
    expect(s.result).toBe("OK");
    expect(s.configRevision).toBe(repo.commits.main);
    expect(s.startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(s.finishedAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    const kinds = Object.fromEntries(s.files!.map((f) => [f.name, f.kind]));
    expect(kinds).toEqual({
      "live-image-amd64.tar.tar.gz": "image",
      "live-image-amd64.packages": "manifest",
      "live-image-amd64.files": "files",
      "live-image-amd64.contents": "contents",
      "build.log": "log",
    });
    for (const f of s.files!) {
      const res = await get(slave, `/files/${f.sha256}`);
      expect(res.status).toBe(200);
      expect(String(res.body.length)).toBe(f.size);
      expect(sha256(res.body)).toBe(f.sha256);
    }
    const image = s.files!.find((f) => f.kind === "image")!;
    const tar = gunzipSync((await get(slave, `/files/${image.sha256}`)).body);
    expect(tar.includes(Buffer.from("./etc/fake-release"))).toBe(true);
    const manifest = (await get(slave, `/files/${s.files!.find((f) => f.kind === "manifest")!.sha256}`)).body.toString();
    expect(manifest.split("\n").filter(Boolean).every((l) => /^[^\t]+\t[^\t]+$/.test(l))).toBe(true);

    // The log: the RUN lines, the environment, no credentials, no token.
    const logFile = s.files!.find((f) => f.kind === "log")!;
    const log = (await get(slave, `/files/${logFile.sha256}`)).body.toString();
    expect(log).toContain("RUN: git clone --depth 1 --branch main");
    expect(log.indexOf("RUN: " + slave.url)).toBe(-1);
    const runs = log.split("\n").filter((l) => l.startsWith("RUN: ") && l.includes("fake-lb"));
    expect(runs.map((l) => l.replace(/^RUN: \S+ /, ""))).toEqual(["clean --purge", "config", "build"]);
    const today = new Date().toISOString().slice(0, 10).replace(/-/g, "");
    expect(log).toContain(`PROJECT=demo ARCH=amd64 SUITE=bookworm NOW=${today} SOURCE_DATE_EPOCH=${COMMIT_EPOCH}`);
    expect(log).toContain("The value of MIRROR_URL is https://***@mirror.example.invalid/debian");
    expect(log).not.toContain("s3cr3t-pass");
    expect(log).not.toContain(slave.token);
    expect(log).toMatch(/Result: OK/);
    // The live log endpoint serves the same bytes while the slave holds the build.
    const live = await get(slave, "/builds/1-1/log?offset=0");
    expect(live.status).toBe(200);
    expect(live.body.toString()).toBe(log);
    expect(String(live.body.length)).toBe(s.logSize);
    const tail = await get(slave, `/builds/1-1/log?offset=${live.body.length - 10}`);
    expect(tail.body.toString()).toBe(log.slice(-10));
    expect(s.logTail).toBe(log.slice(-2048));

    // No process of the build is left, nothing mounted.
    const workspace = join(slave.stateDir, "builds", "1-1");
    expect(processesOfBuild(slave.stateDir, "1-1")).toEqual([]);

    // The daemon's log says how long each step took (where a build's time goes).
    const steps = slave
      .output()
      .split("\n")
      .filter((l) => l.includes('"build step finished"'))
      .map((l) => JSON.parse(l) as { cookie: string; step: string; ms: number })
      .filter((e) => e.cookie === "1-1");
    expect(steps.map((e) => e.step)).toEqual(["git clone", "make container", "lb clean --purge", "lb config", "lb build", "store results"]);
    for (const e of steps) expect(Number.isInteger(e.ms) && e.ms >= 0, JSON.stringify(e)).toBe(true);

    // clean removes the workspace and the cached files.
    await clean("1-1");
    expect(existsSync(workspace)).toBe(false);
    expect((await get(slave, `/files/${image.sha256}`)).status).toBe(404);
    expect((await get(slave, "/builds/1-1/log")).status).toBe(404);
    expect(readdirSync(join(slave.stateDir, "cache"))).toEqual([]);
  });

  it("runs the branch's auto/config through lb config", async () => {
    const s = await buildAndWait("2-1", { configRef: "auto-config", env: { LB: FAKE_LB } });
    const log = (await get(slave, "/builds/2-1/log")).body.toString();
    expect(log).toContain("auto/config ran for demo");
    expect(s.result).toBe("OK");
    await clean("2-1");
  });

  it("builds a given commit id (not a branch tip)", async () => {
    const s = await buildAndWait("3-1", { configRef: repo.commits.main });
    expect(s.result).toBe("OK");
    expect(s.configRevision).toBe(repo.commits.main);
    await clean("3-1");
  });
});

describe("failures are classified", () => {
  it("lb build failing is BUILDFAIL with its exit status, and only the log is offered", async () => {
    const s = await buildAndWait("10-1", { configRef: "lb-fails" });
    expect(s.result).toBe("BUILDFAIL");
    expect(s.message).toMatch(/build" failed with exit status 3/);
    expect(s.files!.map((f) => f.kind)).toEqual(["log"]);
    expect(s.logTail).toContain("E: fake-lb: build failed as fake-lb.conf says (exit 3)");
    await clean("10-1");
  });

  it("lb config failing is BUILDFAIL (the config's fault)", async () => {
    const s = await buildAndWait("11-1", { configRef: "config-fails" });
    expect(s.result).toBe("BUILDFAIL");
    expect(s.message).toMatch(/config" failed with exit status 2/);
    await clean("11-1");
  });

  it("a build that writes no image is BUILDFAIL", async () => {
    const s = await buildAndWait("12-1", { configRef: "no-image" });
    expect(s.result).toBe("BUILDFAIL");
    expect(s.message).toMatch(/wrote no image/);
    await clean("12-1");
  });

  it("an unknown ref is CONFIGFAIL", async () => {
    const s = await buildAndWait("13-1", { configRef: "no-such-branch" });
    expect(s.result).toBe("CONFIGFAIL");
    expect(s.message).toMatch(/could not be cloned at "no-such-branch"/);
    expect(s.configRevision).toBeUndefined();
    await clean("13-1");
  });

  it("an unreachable repository is CONFIGFAIL, and credentials in its URL never reach the log", async () => {
    const url = `file://user:hunter22@/nonexistent/lexbuilder/repo.git`;
    const s = await buildAndWait("14-1", { configUrl: url });
    expect(s.result).toBe("CONFIGFAIL");
    const log = (await get(slave, "/builds/14-1/log")).body.toString();
    expect(log).not.toContain("hunter22");
    expect(s.message).not.toContain("hunter22");
    expect(log).toContain("file://***@/nonexistent");
    await clean("14-1");
  });
});

describe("abort", () => {
  // In a container the build's mounts live in its own mount namespace (the host never sees
  // them, nothing to unmount); without one they are on the host and the slave unmounts them.
  for (const isolation of ["container", "none"] as const) {
    it(`kills the whole process tree, escapees included, and reports ABORTED (isolation ${isolation})`, async () => {
      const target = isolation === "container" ? slave : await startSlave({ env: { LEXBUILDER_SLAVE_ISOLATION: "none" } });
      try {
        await abortSlowBuild(target, isolation === "none");
      } finally {
        if (target !== slave) await target.stop();
      }
    });
  }
});

async function abortSlowBuild(slave: Slave, hostMounts: boolean) {
    const cookie = "20-1";
    await slave.client.call("build", cookie, { project: "demo", configUrl: repo.url, configRef: "slow", architecture: "amd64" });
    const workspace = join(slave.stateDir, "builds", cookie);
    // Wait until lb build runs, with its grandchildren, the escapee and the mount.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const s = await slave.client.call("status");
      if (s.logTail?.includes("Progress 1/")) break;
      await sleep(200);
    }
    const before = processesOfBuild(slave.stateDir, cookie);
    expect(before.length).toBeGreaterThanOrEqual(4);
    expect(mountsBelow(workspace).length).toBe(hostMounts ? 1 : 0);
    // lb's session, and the escapee's own.
    const sessions = new Set(before.map((pid) => readFileSync(`/proc/${pid}/stat`, "latin1").split(") ")[1]!.split(" ")[3]));
    expect(sessions.size).toBe(2);

    const started = Date.now();
    expect(await slave.client.call("abort", cookie)).toEqual({ state: "ABORTING" });
    expect(await slave.client.call("abort", cookie)).toEqual({ state: "ABORTING" });
    const s = await waitForState(slave.client, "WAITING", 20_000);
    const took = Date.now() - started;
    expect(s.result).toBe("ABORTED");
    // SIGTERM is ignored by the tree, so this took the grace period, within the 10 s deadline.
    expect(took).toBeLessThan(10_000);
    expect(processesOfBuild(slave.stateDir, cookie)).toEqual([]);
    for (const pid of before) expect(isAlive(pid), String(pid)).toBe(false);
    expect(mountsBelow(workspace)).toEqual([]);
    expect(s.logTail).toMatch(/Abort requested/);
    if (hostMounts) expect(s.logTail).toMatch(/Unmounted what the build left mounted/);
    expect(await slave.client.call("abort", cookie)).toEqual({ state: "WAITING" });
    expect(await slave.client.call("clean", cookie)).toEqual({ state: "IDLE" });
    expect(await slave.client.call("abort", cookie)).toEqual({ state: "IDLE" });
}

/** Alive: /proc has it and it is neither a zombie nor dead (being reaped). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return !/^[ZXx]/.test(stat.slice(stat.lastIndexOf(")") + 2));
  } catch {
    return false;
  }
}

describe("downloads", () => {
  it("resumes with Range, refuses bad ranges, unknown and malformed hashes and path tricks", async () => {
    const s = await buildAndWait("30-1", { configRef: "main" });
    const image = s.files!.find((f) => f.kind === "image")!;
    const whole = (await get(slave, `/files/${image.sha256}`)).body;
    const size = whole.length;
    expect(size).toBeGreaterThan(100);

    // A transfer broken after 100 bytes resumes from there.
    const first = (await get(slave, `/files/${image.sha256}`, { Range: "bytes=0-99" }));
    expect(first.status).toBe(206);
    expect(first.headers.get("content-range")).toBe(`bytes 0-99/${size}`);
    const rest = await get(slave, `/files/${image.sha256}`, { Range: "bytes=100-" });
    expect(rest.status).toBe(206);
    expect(rest.headers.get("content-range")).toBe(`bytes 100-${size - 1}/${size}`);
    expect(sha256(Buffer.concat([first.body, rest.body]))).toBe(image.sha256);
    const suffix = await get(slave, `/files/${image.sha256}`, { Range: "bytes=-10" });
    expect(suffix.status).toBe(206);
    expect(suffix.body.equals(whole.subarray(size - 10))).toBe(true);

    const beyond = await get(slave, `/files/${image.sha256}`, { Range: `bytes=${size}-` });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe(`bytes */${size}`);
    expect((await get(slave, `/files/${image.sha256}`, { Range: "bytes=50-10" })).status).toBe(416);

    expect((await get(slave, `/files/${"0".repeat(64)}`)).status).toBe(404);
    expect((await get(slave, `/files/${image.sha256.toUpperCase()}`)).status).toBe(400);
    expect((await get(slave, `/files/${image.sha256.slice(1)}`)).status).toBe(400);
    expect((await get(slave, "/files/..%2Fstate.json")).status).toBe(400);
    expect((await get(slave, "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd")).status).toBe(400);
    const dotdot = await get(slave, "/files/../state.json");
    expect(dotdot.status).toBe(404);
    expect(dotdot.body.toString()).not.toContain("WAITING");
    expect((await get(slave, "/files/")).status).toBe(400);
    // Without the token: 401, whatever the hash.
    expect((await fetch(`${slave.url}/files/${image.sha256}`)).status).toBe(401);

    // The log endpoint's checks.
    expect((await get(slave, "/builds/30-1/log?offset=abc")).status).toBe(400);
    expect((await get(slave, "/builds/30-1/log?offset=99999999")).status).toBe(416);
    expect((await get(slave, "/builds/31-1/log")).status).toBe(404);
    expect((await get(slave, "/builds/..%2F..%2Fstate.json/log")).status).toBe(400);
    await clean("30-1");
  });
});
