// The slave's limits: a disk that fills up (a real 20 MiB tmpfs as the state directory), too
// little free disk to start, the build timeout, and the age limit on uncollected results.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultCode, RpcFault } from "@lexbuilder/shared-models/protocol";
import { fakeConf, get, makeConfigRepo, mountsBelow, processesOfBuild, sleep, startSlave, tempDir, waitFor, waitForState, type ConfigRepo } from "./helpers.js";

const isRoot = process.getuid?.() === 0;
let repo: ConfigRepo;

beforeAll(() => {
  repo = makeConfigRepo({
    quick: fakeConf([]),
    filler: fakeConf(["fill-mib=40"]),
    forever: fakeConf(["sleep=600", "mount=yes"]),
  });
});

const args = (ref: string) => ({ project: "demo", configUrl: repo.url, configRef: ref, architecture: "amd64" });

describe("disk", () => {
  const mountPoint = tempDir("tmpfs");
  afterAll(() => {
    if (mountsBelow(mountPoint).length) execFileSync("umount", ["-l", mountPoint]);
  });

  it.skipIf(!isRoot)("a disk that fills up during the build is BUILDERFAIL; clean frees it for the next build", async () => {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=20m", "lexbuilder-test", mountPoint]);
    const stateDir = join(mountPoint, "state");
    const slave = await startSlave({ stateDir, tokenFile: join(tempDir("token"), "token"), env: { LEXBUILDER_SLAVE_MIN_FREE_DISK: "5M" } });
    try {
      await slave.client.call("build", "60-1", args("filler"));
      const s = await waitForState(slave.client, "WAITING", 30_000);
      expect(s.result).toBe("BUILDERFAIL");
      expect(s.message).toMatch(/disk filled up/);
      // While the failed workspace fills the disk, the builder says it is not ready.
      const info = await slave.client.call("info");
      expect(info.ready).toBe(false);
      expect(info.notReadyReason).toMatch(/below the minimum/);
      const f = await slave.client.call("build", "61-1", args("quick")).catch((e: unknown) => e);
      expect((f as RpcFault).faultCode).toBe(FaultCode.BUSY);
      await slave.client.call("clean", "60-1");
      expect((await slave.client.call("info")).ready).toBe(true);
      await slave.client.call("build", "61-1", args("quick"));
      const ok = await waitForState(slave.client, "WAITING", 30_000);
      expect(ok.result).toBe("OK");
      await slave.client.call("clean", "61-1");
    } finally {
      await slave.stop();
    }
  });

  it.skipIf(!isRoot)("too little free disk to start: NOT_READY, nothing started", async () => {
    if (!mountsBelow(mountPoint).length) execFileSync("mount", ["-t", "tmpfs", "-o", "size=20m", "lexbuilder-test", mountPoint]);
    const slave = await startSlave({ stateDir: join(mountPoint, "state2"), tokenFile: join(tempDir("token"), "token"), env: { LEXBUILDER_SLAVE_MIN_FREE_DISK: "64M" } });
    try {
      const info = await slave.client.call("info");
      expect(info.ready).toBe(false);
      expect(Number(info.freeDiskBytes)).toBeLessThanOrEqual(20 * 1024 * 1024);
      const f = await slave.client.call("build", "62-1", args("quick")).catch((e: unknown) => e);
      expect((f as RpcFault).faultCode).toBe(FaultCode.NOT_READY);
      expect((f as RpcFault).faultString).toMatch(/disk is free/);
    } finally {
      await slave.stop();
    }
  });
});

describe("build timeout", () => {
  it("stops a build that runs too long: BUILDFAIL saying it timed out, nothing left running", async () => {
    const slave = await startSlave({ env: { LEXBUILDER_SLAVE_BUILD_TIMEOUT: "3" } });
    try {
      const t0 = Date.now();
      await slave.client.call("build", "63-1", args("forever"));
      const s = await waitForState(slave.client, "WAITING", 30_000);
      expect(Date.now() - t0).toBeLessThan(20_000);
      expect(s.result).toBe("BUILDFAIL");
      expect(s.message).toMatch(/timed out after 3 s/);
      const workspace = join(slave.stateDir, "builds", "63-1");
      expect(processesOfBuild(slave.stateDir, "63-1")).toEqual([]);
      expect(mountsBelow(workspace)).toEqual([]);
      await slave.client.call("clean", "63-1");
    } finally {
      await slave.stop();
    }
  });
});

describe("a clone that hangs", () => {
  it("is stopped by abort: ABORTED, git gone", async () => {
    // A git:// server that accepts and never answers.
    const sockets: import("node:net").Socket[] = [];
    const { createServer } = await import("node:net");
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as import("node:net").AddressInfo).port;
    const slave = await startSlave({ env: { LEXBUILDER_SLAVE_ALLOWED_SCHEMES: "file,git" } });
    try {
      await slave.client.call("build", "66-1", { ...args("quick"), configUrl: `git://127.0.0.1:${port}/config.git` });
      await waitFor(slave.client, () => sockets.length > 0, 10_000).catch(() => undefined);
      expect(sockets.length).toBeGreaterThan(0);
      expect((await slave.client.call("status")).state).toBe("BUILDING");
      const t0 = Date.now();
      await slave.client.call("abort", "66-1");
      const s = await waitForState(slave.client, "WAITING", 15_000);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(s.result).toBe("ABORTED");
      expect(processesOfBuild(slave.stateDir, "66-1")).toEqual([]);
      await slave.client.call("clean", "66-1");
    } finally {
      await slave.stop();
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});

describe("a broken live-build front end", () => {
  it("is BUILDERFAIL (the machine's fault), not the config's", async () => {
    // Executable, so readiness passes, but it cannot start (its interpreter is missing).
    const lb = join(tempDir("lb"), "lb");
    writeFileSync(lb, "#!/nonexistent/interpreter\n", { mode: 0o755 });
    const slave = await startSlave({ env: { LEXBUILDER_SLAVE_LB: lb } });
    try {
      await slave.client.call("build", "65-1", args("quick"));
      const s = await waitForState(slave.client, "WAITING");
      expect(s.result).toBe("BUILDERFAIL");
      expect(s.message).toMatch(/install it as root with `apt-get install live-build debootstrap`/);
      expect(s.configRevision).toBe(repo.commits.quick);
      await slave.client.call("clean", "65-1");
    } finally {
      await slave.stop();
    }
  });
});

describe("age limit", () => {
  it("removes results nobody collected, and stray cache entries and workspaces", async () => {
    const stateDir = tempDir("state");
    // Leftovers of an earlier life, old enough to go.
    mkdirSync(join(stateDir, "cache"), { recursive: true });
    mkdirSync(join(stateDir, "builds", "9-9", "config"), { recursive: true });
    const stray = join(stateDir, "cache", "f".repeat(64));
    writeFileSync(stray, "old");
    const old = new Date(Date.now() - 3600_000);
    utimesSync(stray, old, old);
    utimesSync(join(stateDir, "builds", "9-9"), old, old);

    const slave = await startSlave({ stateDir, env: { LEXBUILDER_SLAVE_CACHE_MAX_AGE: "3" } });
    try {
      await waitFor(slave.client, () => !existsSync(stray) && !existsSync(join(stateDir, "builds", "9-9")), 10_000);
      await slave.client.call("build", "64-1", args("quick"));
      const s = await waitForState(slave.client, "WAITING");
      const image = s.files!.find((f) => f.kind === "image")!;
      expect((await get(slave, `/files/${image.sha256}`)).status).toBe(200);
      // Nobody collects: within max age + a sweep interval the slave cleans up by itself.
      const idle = await waitForState(slave.client, "IDLE", 15_000);
      expect(idle.cookie).toBeUndefined();
      expect((await get(slave, `/files/${image.sha256}`)).status).toBe(404);
      expect(readdirSync(join(stateDir, "cache"))).toEqual([]);
      expect(readdirSync(join(stateDir, "builds"))).toEqual([]);
      expect(slave.output()).toMatch(/not collected within the age limit/);
    } finally {
      await slave.stop();
    }
    await sleep(0);
  });
});
