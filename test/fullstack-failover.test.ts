// Failures through the whole stack: two masters, a standby taking over after kill -9, a slave
// killed mid-build, a slave reporting the wrong cookie, the master killed -9 while a build is
// DISPATCHING, BUILDING and COLLECTING, and corrupt downloads. Real processes throughout.
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimQueuedBuilds } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { fakeConf, makeConfigRepo, startSlave, waitForState, type ConfigRepo, type Slave } from "../packages/slave/test/helpers.js";
import {
  addBuilderViaCli,
  admin,
  builderId,
  buildRow,
  sha256File,
  startMaster,
  startRelay,
  tempDir,
  waitForBuildState,
  waitUntil,
  type MasterProcess,
  type Relay,
} from "./fullstack-helpers.js";

let db: TestDatabase;
let repo: ConfigRepo;
const slaves: Slave[] = [];
const relays: Relay[] = [];
let master: MasterProcess;
const artifacts = tempDir("artifacts");
const names = ["one", "two"];

async function request(project: string): Promise<number> {
  const r = await admin(db.url, ["request-build", project]);
  expect(r.stderr).toBe("");
  return Number(r.stdout.trim());
}

/** A master that waits for the lock (a killed one's session may take a moment to end). */
async function restartMaster(): Promise<MasterProcess> {
  const m = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, args: ["--standby"] });
  await m.started;
  return m;
}

async function crashMaster(): Promise<void> {
  await master.crash();
}

async function expectCollectedOnce(id: number): Promise<void> {
  const b = await buildRow(db.pool, id);
  expect(b.state).toBe("SUCCEEDED");
  const { rows } = await db.pool.query("SELECT name, sha256, stored_path FROM artifacts WHERE build_id = $1", [id]);
  expect(rows.length).toBeGreaterThanOrEqual(4);
  expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
  for (const r of rows) expect(sha256File(join(artifacts, r.stored_path))).toBe(r.sha256);
  expect(readdirSync(join(artifacts, b.artifact_dir!)).sort()).toEqual(rows.map((r) => r.name).sort());
  const m = await db.pool.query("SELECT count(*)::int AS n FROM manifest_entries WHERE build_id = $1", [id]);
  expect(m.rows[0].n).toBe(3);
  const { rows: audit } = await db.pool.query("SELECT count(*)::int AS n FROM builds WHERE retry_of = $1", [id]);
  expect(audit[0].n).toBe(0);
}

async function allIdle(): Promise<void> {
  await waitUntil("builders idle", async () => {
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM builders WHERE state = 'IDLE' AND current_build_id IS NULL AND enabled");
    return rows[0].n === 2;
  }, 30_000);
}

beforeAll(async () => {
  db = await createTestDatabase();
  repo = makeConfigRepo({ main: fakeConf([]), slow: fakeConf(["sleep=5"]) });
  for (const name of names) {
    const s = await startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64" } });
    slaves.push(s);
    const r = await startRelay(s.url);
    relays.push(r);
    await addBuilderViaCli(db.url, name, r.url, s.token);
  }
  for (const [name, ref] of [["hello", "main"], ["slowpoke", "slow"]]) {
    const r = await admin(db.url, ["add-project", name!, "--config-url", repo.url, "--config-ref", ref!, "--arch", "amd64"]);
    expect(r.code).toBe(0);
  }
  master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts });
  await master.started;
  await allIdle();
}, 120_000);

afterAll(async () => {
  await master?.stop();
  await Promise.all(slaves.map((s) => s.stop()));
  await Promise.all(relays.map((r) => r.close()));
  await db?.drop();
});

describe("one master", () => {
  it("refuses a second master with a sentence, and a standby takes over within seconds of a kill -9", async () => {
    const second = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain("another master is already running on this database");

    const standby = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, args: ["--standby"] });
    await waitUntil("standby serving healthz", async () => (await fetch(`${standby.metricsUrl}/healthz`).catch(() => null))?.status === 503);
    expect(standby.output()).not.toContain("master started");

    const t0 = Date.now();
    await master.crash();
    await standby.started;
    const took = Date.now() - t0;
    expect(took).toBeLessThan(5000);
    expect((await fetch(`${standby.metricsUrl}/healthz`)).status).toBe(200);
    master = standby;

    const id = await request("hello");
    await waitForBuildState(db.pool, id, ["SUCCEEDED"]);
    await expectCollectedOnce(id);
  }, 60_000);
});

describe("builders failing", () => {
  it("finishes on another slave a job whose slave was killed -9 mid-build", async () => {
    await allIdle();
    const id = await request("slowpoke");
    const building = await waitForBuildState(db.pool, id, ["BUILDING"]);
    const i = building.builder_id === (await builderId(db.pool, "one")) ? 0 : 1;
    await slaves[i]!.crash();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 60_000);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.builder_id).not.toBe(building.builder_id);
    expect(done.requeue_count).toBe(1);
    expect(done.attempt).toBe(2);
    await expectCollectedOnce(id);
    const { rows } = await db.pool.query("SELECT state, failure_count FROM builders WHERE id = $1", [building.builder_id]);
    expect(rows[0]).toEqual({ state: "OFFLINE", failure_count: 1 });

    // The slave comes back (same state and token, new port): it is tidied and used again.
    const back = await startSlave({ stateDir: slaves[i]!.stateDir, tokenFile: slaves[i]!.tokenFile, env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64" } });
    slaves[i] = back;
    relays[i]!.target = back.url;
    await allIdle();
  }, 120_000);

  it("re-queues a job whose slave reports another cookie, and tidies the stranger", async () => {
    await allIdle();
    const id = await request("slowpoke");
    const building = await waitForBuildState(db.pool, id, ["BUILDING"]);
    const i = building.builder_id === (await builderId(db.pool, "one")) ? 0 : 1;
    const slave = slaves[i]!;
    await crashMaster();
    // Behind the master's back, the slave drops our build and takes another.
    await slave.client.call("abort", building.cookie!);
    await waitForState(slave.client, "WAITING");
    await slave.client.call("clean", building.cookie!);
    await slave.client.call("build", "999999-1", { project: "intruder", configUrl: repo.url, configRef: "slow", architecture: "amd64" });
    master = await restartMaster();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 60_000);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.requeue_count).toBe(1);
    expect(master.output()).toContain("cookie mismatch");
    await expectCollectedOnce(id);
    // The intruder was aborted and cleaned.
    await waitUntil("intruder gone", async () => {
      const s = await slave.client.call("status");
      return s.cookie !== "999999-1" && s.state === "IDLE";
    }, 30_000);
  }, 120_000);
});

describe("the master killed -9 at every step", () => {
  it("DISPATCHING, before the slave heard of it: the restarted master gives it back and builds it once", async () => {
    await allIdle();
    await crashMaster();
    const id = await request("hello");
    const claimed = (await claimQueuedBuilds(db.pool, [await builderId(db.pool, "one")]))[0];
    expect(claimed?.id).toBe(id);
    expect((await buildRow(db.pool, id)).state).toBe("DISPATCHING");
    master = await restartMaster();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(2);
    expect(done.requeue_count).toBe(0);
    await expectCollectedOnce(id);
  }, 60_000);

  it("DISPATCHING, after the slave accepted: the restarted master adopts the running build", async () => {
    await allIdle();
    await crashMaster();
    const id = await request("hello");
    const claimed = (await claimQueuedBuilds(db.pool, [await builderId(db.pool, "two")]))[0];
    expect(claimed?.id).toBe(id);
    await slaves[1]!.client.call("build", claimed!.cookie, { project: "hello", configUrl: repo.url, configRef: "main", architecture: "amd64" });
    master = await restartMaster();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(1);
    await expectCollectedOnce(id);
  }, 60_000);

  it("BUILDING: the restarted master picks the build up where it is", async () => {
    await allIdle();
    const id = await request("slowpoke");
    await waitForBuildState(db.pool, id, ["BUILDING"]);
    await crashMaster();
    master = await restartMaster();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 60_000);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(1);
    await expectCollectedOnce(id);
  }, 90_000);

  it("COLLECTING: the restarted master collects again, once", async () => {
    await allIdle();
    for (const r of relays) r.mode = { files: "slow", delayMs: 4000, corruptTimes: 0 };
    const id = await request("hello");
    await waitForBuildState(db.pool, id, ["COLLECTING"]);
    await crashMaster();
    for (const r of relays) r.mode = { files: "pass", delayMs: 0, corruptTimes: 0 };
    master = await restartMaster();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 60_000);
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(1);
    await expectCollectedOnce(id);
  }, 90_000);
});

describe("corrupt downloads", () => {
  it("retries a corrupt transfer and records only the verified file", async () => {
    await allIdle();
    for (const r of relays) r.mode = { files: "corrupt", delayMs: 0, corruptTimes: 1 };
    const id = await request("hello");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.state).toBe("SUCCEEDED");
    await expectCollectedOnce(id);
    const metrics = await (await fetch(`${master.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/lexbuilder_collect_retries_total [1-9]/);
  }, 60_000);

  it("resumes transfers cut in the middle where they stopped, without counting them as failures", async () => {
    await allIdle();
    const ranges = relays.reduce((n, r) => n + r.rangeRequests, 0);
    // More cuts than the allowed attempts: only resuming can get the files through.
    for (const r of relays) r.mode = { files: "cut", delayMs: 0, corruptTimes: 0, cutAfterBytes: 200, cutTimes: 6 };
    const id = await request("hello");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    for (const r of relays) r.mode = { files: "pass", delayMs: 0, corruptTimes: 0 };
    expect(done.state).toBe("SUCCEEDED");
    await expectCollectedOnce(id);
    expect(relays.reduce((n, r) => n + r.rangeRequests, 0)).toBeGreaterThan(ranges);
    const metrics = await (await fetch(`${master.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/lexbuilder_collect_resumes_total [1-9]/);
  }, 60_000);

  it("fails the build with kind collect, storing nothing, when every transfer is corrupt", async () => {
    await allIdle();
    for (const r of relays) r.mode = { files: "corrupt", delayMs: 0, corruptTimes: Infinity };
    const id = await request("hello");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    for (const r of relays) r.mode = { files: "pass", delayMs: 0, corruptTimes: 0 };
    expect(done.state).toBe("FAILED");
    expect(done.failure_kind).toBe("collect");
    expect(done.failure_message).toMatch(/sha256/);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM artifacts WHERE build_id = $1", [id]);
    expect(rows[0].n).toBe(0);
    const day = readdirSync(join(artifacts, "hello"));
    for (const d of day) expect(existsSync(join(artifacts, "hello", d, String(id)))).toBe(false);
    await allIdle();
  }, 60_000);
});
