// Restarts: a slave restarted while WAITING still offers its results; one restarted (or
// stopped) while BUILDING reports BUILDERFAIL and leaves no process or mount of the build.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { fakeConf, get, makeConfigRepo, mountsBelow, processesOfBuild, startSlave, waitFor, waitForState, type ConfigRepo, type Slave } from "./helpers.js";

let repo: ConfigRepo;
const started: Slave[] = [];

beforeAll(() => {
  repo = makeConfigRepo({
    quick: fakeConf([]),
    slow: fakeConf(["sleep=120", "mount=yes", "escape=yes"]),
  });
});

afterEach(async () => {
  for (const s of started.splice(0)) if (s.proc.exitCode === null && s.proc.signalCode === null) await s.stop();
});

async function start(opts: Parameters<typeof startSlave>[0] = {}): Promise<Slave> {
  const s = await startSlave(opts);
  started.push(s);
  return s;
}

const args = (ref: string) => ({ project: "demo", configUrl: repo.url, configRef: ref, architecture: "amd64" });

describe("restart while WAITING", () => {
  it("still offers the results, with a version past the old one", async () => {
    const first = await start();
    await first.client.call("build", "50-1", args("quick"));
    const before = await waitForState(first.client, "WAITING");
    expect(before.result).toBe("OK");
    await first.crash();

    const second = await start({ stateDir: first.stateDir, tokenFile: first.tokenFile });
    expect(second.token).toBe(first.token);
    const after = await second.client.call("status");
    expect(after).toMatchObject({ state: "WAITING", cookie: "50-1", result: "OK", configRevision: before.configRevision });
    expect(after.files).toEqual(before.files);
    expect(after.logSize).toBe(before.logSize);
    expect(after.version).toBeGreaterThan(before.version);
    for (const f of after.files!) {
      const res = await get(second, `/files/${f.sha256}`);
      expect(res.status).toBe(200);
      expect(createHash("sha256").update(res.body).digest("hex")).toBe(f.sha256);
    }
    expect((await get(second, "/builds/50-1/log")).status).toBe(200);
    expect(await second.client.call("clean", "50-1")).toEqual({ state: "IDLE" });
  });
});

describe("restart while BUILDING", () => {
  it("after a crash without a container: reports BUILDERFAIL and kills what the crash left running", async () => {
    const none = { env: { LEXBUILDER_SLAVE_ISOLATION: "none" } };
    const first = await start(none);
    await first.client.call("build", "51-1", args("slow"));
    await waitFor(first.client, (s) => (s.logTail ?? "").includes("Progress 1/"));
    const workspace = join(first.stateDir, "builds", "51-1");
    await first.crash();
    // The build's processes outlive the daemon (their own process groups): a real leftover.
    const orphans = processesOfBuild(first.stateDir, "51-1");
    expect(orphans.length).toBeGreaterThanOrEqual(3);
    expect(mountsBelow(workspace).length).toBe(1);

    const second = await start({ stateDir: first.stateDir, tokenFile: first.tokenFile, ...none });
    const s = await second.client.call("status");
    expect(s).toMatchObject({ state: "WAITING", cookie: "51-1", result: "BUILDERFAIL" });
    expect(s.message).toMatch(/restarted during the build/);
    expect(s.files!.map((f) => f.kind)).toEqual(["log"]);
    expect(s.logTail).toMatch(/Stopped [0-9]+ process\(es\) left from before the restart/);
    expect(processesOfBuild(first.stateDir, "51-1")).toEqual([]);
    expect(mountsBelow(workspace)).toEqual([]);
    expect(await second.client.call("clean", "51-1")).toEqual({ state: "IDLE" });
  });

  it("after a crash in a container: nothing of the build outlives the daemon, and the restart reports BUILDERFAIL", async () => {
    const first = await start();
    await first.client.call("build", "53-1", args("slow"));
    await waitFor(first.client, (s) => (s.logTail ?? "").includes("Progress 1/"));
    const workspace = join(first.stateDir, "builds", "53-1");
    expect(processesOfBuild(first.stateDir, "53-1").length).toBeGreaterThanOrEqual(3);
    await first.crash();
    // bwrap dies with its parent and takes the PID namespace along; the mounts die with theirs.
    const deadline = Date.now() + 5000;
    while (processesOfBuild(first.stateDir, "53-1").length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(processesOfBuild(first.stateDir, "53-1")).toEqual([]);
    expect(mountsBelow(workspace)).toEqual([]);

    const second = await start({ stateDir: first.stateDir, tokenFile: first.tokenFile });
    const s = await second.client.call("status");
    expect(s).toMatchObject({ state: "WAITING", cookie: "53-1", result: "BUILDERFAIL" });
    expect(s.message).toMatch(/restarted during the build/);
    expect(await second.client.call("clean", "53-1")).toEqual({ state: "IDLE" });
  });

  it("after SIGTERM: the daemon stops the build first and reports BUILDERFAIL after the restart", async () => {
    const first = await start();
    await first.client.call("build", "52-1", args("slow"));
    await waitFor(first.client, (s) => (s.logTail ?? "").includes("Progress 1/"));
    const workspace = join(first.stateDir, "builds", "52-1");
    const t0 = Date.now();
    expect(await first.stop()).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(processesOfBuild(first.stateDir, "52-1")).toEqual([]);
    expect(mountsBelow(workspace)).toEqual([]);

    const second = await start({ stateDir: first.stateDir, tokenFile: first.tokenFile });
    const s = await second.client.call("status");
    expect(s).toMatchObject({ state: "WAITING", cookie: "52-1", result: "BUILDERFAIL" });
    expect(s.message).toMatch(/stopped during the build/);
    await second.client.call("clean", "52-1");
  });
});
