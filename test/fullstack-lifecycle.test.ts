// The whole life of builds through the real master, real slaves (fake lb) and PostgreSQL,
// driven through lexbuilder-admin and the data-access functions the webapp uses.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cancelBuild } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { fakeConf, makeConfigRepo, startSlave, type ConfigRepo, type Slave } from "../packages/slave/test/helpers.js";
import {
  addBuilderViaCli,
  admin,
  buildRow,
  sha256File,
  startMaster,
  tempDir,
  waitForBuildState,
  waitUntil,
  type MasterProcess,
} from "./fullstack-helpers.js";

let db: TestDatabase;
let repo: ConfigRepo;
let amd: Slave;
let arm: Slave;
let master: MasterProcess;
const artifacts = tempDir("artifacts");

async function request(project: string, extra: string[] = []): Promise<number> {
  const r = await admin(db.url, ["request-build", project, ...extra]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^[0-9]+\n$/);
  return Number(r.stdout.trim());
}

beforeAll(async () => {
  db = await createTestDatabase();
  repo = makeConfigRepo({
    main: fakeConf([]),
    slow: fakeConf(["sleep=4"]),
    long: fakeConf(["sleep=60"]),
    broken: fakeConf(["fail-at=build", "exit=1"]),
  });
  [amd, arm] = await Promise.all([
    startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64" } }),
    startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "arm64" } }),
  ]);
  await addBuilderViaCli(db.url, "amd", amd.url, amd.token);
  await addBuilderViaCli(db.url, "arm", arm.url, arm.token);
  for (const [name, ref, arch] of [
    ["hello", "main", "amd64"],
    ["hello-arm", "main", "arm64"],
    ["slowpoke", "slow", "amd64"],
    ["forever", "long", "amd64"],
    ["broken", "broken", "amd64"],
    ["noref", "does-not-exist", "amd64"],
  ] as const) {
    const r = await admin(db.url, ["add-project", name, "--config-url", repo.url, "--config-ref", ref, "--arch", arch]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }
  master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts });
  await master.started;
  // Both builders seen idle and ready.
  await waitUntil("builders idle", async () => {
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM builders WHERE state = 'IDLE' AND ready");
    return rows[0].n === 2;
  });
}, 120_000);

afterAll(async () => {
  await master?.stop();
  await Promise.all([amd?.stop(), arm?.stop()]);
  await db?.drop();
});

describe("a build's whole life", () => {
  it("goes QUEUED → SUCCEEDED with verified files on disk, manifest rows, a log, and a clean slave", async () => {
    const id = await request("hello");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.failure_message).toBeNull();
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(1);
    expect(done.artifact_dir).toMatch(new RegExp(`^hello/[0-9]{8}/${id}$`));

    const shown = await admin(db.url, ["show-build", String(id), "--json"]);
    expect(shown.code).toBe(0);
    const api = JSON.parse(shown.stdout);
    expect(api).toMatchObject({ id, project: "hello", state: "SUCCEEDED", builder: "amd", result: "OK", architecture: "amd64" });
    expect(api.configRevision).toBe(repo.commits.main);
    const names = api.files.map((f: { name: string }) => f.name).sort();
    expect(names).toEqual(expect.arrayContaining(["live-image-amd64.packages", "live-image-amd64.tar.tar.gz"]));

    // Every file on disk matches its recorded sha256 and size; nothing half-written is left.
    const { rows: arts } = await db.pool.query("SELECT name, sha256, size, stored_path FROM artifacts WHERE build_id = $1", [id]);
    expect(arts.length).toBe(api.files.length);
    for (const a of arts) {
      const path = join(artifacts, a.stored_path);
      expect(sha256File(path)).toBe(a.sha256);
    }
    expect(readdirSync(join(artifacts, done.artifact_dir!)).filter((n) => n.endsWith(".part"))).toEqual([]);

    const { rows: manifest } = await db.pool.query("SELECT package, version FROM manifest_entries WHERE build_id = $1 ORDER BY package", [id]);
    expect(manifest).toEqual([
      { package: "base-files", version: "12.4+deb12u5" },
      { package: "bash", version: "5.2.15-2+b2" },
      { package: "libc6", version: "2.36-9+deb12u4" },
    ]);
    const { rows: log } = await db.pool.query("SELECT string_agg(convert_from(data, 'UTF8'), '' ORDER BY byte_offset) AS text FROM build_log_chunks WHERE build_id = $1", [id]);
    expect(log[0].text).toContain("lb build");
    expect(done.log_size).toBe(Buffer.byteLength(log[0].text));

    // The builder is released and the slave cleaned (IDLE again).
    await waitUntil("slave idle", async () => (await amd.client.call("status")).state === "IDLE");
    const { rows: b } = await db.pool.query("SELECT current_build_id, failure_count FROM builders WHERE name = 'amd'");
    expect(b[0]).toEqual({ current_build_id: null, failure_count: 0 });

    const list = await admin(db.url, ["list-builds", "--project", "hello", "--json"]);
    expect(JSON.parse(list.stdout).map((x: { id: number }) => x.id)).toContain(id);
    const metrics = await (await fetch(`${master.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/lexbuilder_builds\{state="SUCCEEDED"\} [1-9]/);
    expect(metrics).toMatch(/lexbuilder_dispatch_latency_seconds_count [1-9]/);
    expect((await fetch(`${master.metricsUrl}/healthz`)).status).toBe(200);
  });

  it("sends a build only to a builder of its architecture", async () => {
    const id = await request("hello-arm");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.state).toBe("SUCCEEDED");
    const { rows } = await db.pool.query("SELECT name FROM builders WHERE id = $1", [done.builder_id]);
    expect(rows[0].name).toBe("arm");
  });

  it("takes the queue by priority, then age", async () => {
    // Occupy the only amd64 builder, then queue low before high.
    const blocker = await request("slowpoke");
    await waitForBuildState(db.pool, blocker, ["BUILDING"]);
    await db.pool.query("UPDATE projects SET priority = 50 WHERE name = 'broken'");
    const low = await request("hello");
    const high = await request("broken");
    const [l, h] = await Promise.all([
      waitForBuildState(db.pool, low, ["SUCCEEDED", "FAILED"], 90_000),
      waitForBuildState(db.pool, high, ["SUCCEEDED", "FAILED"], 90_000),
    ]);
    expect(h.dispatched_at!.getTime()).toBeLessThan(l.dispatched_at!.getTime());
    // The high-priority one is the broken config: a build failure, not the builder's fault.
    expect(h.state).toBe("FAILED");
    expect(h.failure_kind).toBe("build");
    expect(l.state).toBe("SUCCEEDED");
    const { rows } = await db.pool.query("SELECT failure_count FROM builders WHERE name = 'amd'");
    expect(rows[0].failure_count).toBe(0);
  }, 120_000);

  it("fails a build whose ref does not exist with kind config", async () => {
    const id = await request("noref");
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"]);
    expect(done.state).toBe("FAILED");
    expect(done.failure_kind).toBe("config");
  });

  it("cancels a queued build at once and a running one through abort", async () => {
    // Occupy amd with a long build, queue another behind it, cancel both.
    const running = await request("forever");
    await waitForBuildState(db.pool, running, ["BUILDING"]);
    const queued = await request("hello");
    expect((await buildRow(db.pool, queued)).state).toBe("QUEUED");
    expect(await cancelBuild(db.pool, queued)).toEqual({ state: "CANCELLED" });

    expect(await cancelBuild(db.pool, running)).toEqual({ state: "CANCELLING" });
    // "forever" runs a minute: CANCELLED within the 30 s deadline means the abort stopped it.
    const done = await waitForBuildState(db.pool, running, ["CANCELLED"], 30_000);
    expect(done.state).toBe("CANCELLED");
    await waitUntil("slave idle after cancel", async () => (await amd.client.call("status")).state === "IDLE", 20_000);
    const { rows } = await db.pool.query("SELECT current_build_id FROM builders WHERE name = 'amd'");
    expect(rows[0].current_build_id).toBeNull();
    expect(existsSync(join(artifacts, "forever"))).toBe(false);
  }, 60_000);

  it("refuses bad admin input with one sentence and a non-zero exit", async () => {
    const r1 = await admin(db.url, ["request-build", "nope"]);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toBe("lexbuilder-admin: There is no project named nope.\n");
    const r2 = await admin(db.url, ["show-build", "abc"]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr.trim().split("\n")).toHaveLength(1);
    const r3 = await admin(db.url, ["add-builder", "x"]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/^lexbuilder-admin: add-builder takes NAME URL/);
    const r4 = await admin(db.url, ["list-builds", "--help"]);
    expect(r4.code).toBe(0);
    expect(r4.stdout).toContain("--json");
  });
});
