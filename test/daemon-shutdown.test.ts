// SIGTERM stops every daemon promptly and cleanly: exit 0 within 2 s when idle and within 5 s
// during a build (a service manager, or npm start's Ctrl-C, never needs SIGKILL), and the
// build the stop interrupted goes on when the daemons start again.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLog } from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { fakeConf, makeConfigRepo, startSlave, type ConfigRepo, type Slave } from "../packages/slave/test/helpers.js";
import { addBuilderViaCli, admin, startMaster, tempDir, waitForBuildState, waitUntil, type MasterProcess } from "./fullstack-helpers.js";

const WEBAPP_MAIN = join(import.meta.dirname, "..", "packages", "webapp", "dist", "main.js");
const IDLE_BOUND_MS = 2000;
const BUSY_BOUND_MS = 5000;

let db: TestDatabase;
let repo: ConfigRepo;
const artifacts = tempDir("artifacts");
const slaveState = tempDir("state");
const slaveToken = join(slaveState, "..", `${slaveState.split("/").pop()}.token`);
const slaveEnv = { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64" };
// The master polls with the production wait (30 s): a stop must not wait for a long poll to end.
const masterEnv = { LEXBUILDER_MASTER_STATUS_WAIT: "30", LEXBUILDER_MASTER_CALL_TIMEOUT: "40" };

/** SIGTERM, then the exit code and how long the exit took (null code: still running at the deadline). */
async function terminate(sigterm: () => Promise<number | null>, deadlineMs: number): Promise<{ code: number | null | "timeout"; ms: number }> {
  const t0 = Date.now();
  const exited = sigterm();
  const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), deadlineMs + 10_000))]);
  return { code, ms: Date.now() - t0 };
}

async function requestBuild(project: string): Promise<number> {
  const r = await admin(db.url, ["request-build", project]);
  expect(r.code, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

async function builderIdle(): Promise<void> {
  await waitUntil("the builder idle and ready", async () => {
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM builders WHERE state = 'IDLE' AND ready");
    return rows[0].n === 1;
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  repo = makeConfigRepo({ main: fakeConf(["sleep=6"]) });
  const slave = await startSlave({ stateDir: slaveState, tokenFile: slaveToken, env: slaveEnv });
  await addBuilderViaCli(db.url, "local", slave.url, slave.token);
  await slave.stop();
  const r = await admin(db.url, ["add-project", "demo", "--config-url", repo.url, "--config-ref", "main", "--arch", "amd64"]);
  expect(r.code, r.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

/** The slave again on the same state directory and port the builder row names. */
async function restartSlave(): Promise<Slave> {
  const { rows } = await db.pool.query("SELECT url FROM builders WHERE name = 'local'");
  const listen = new URL(rows[0].url).host;
  return startSlave({ stateDir: slaveState, tokenFile: slaveToken, env: { ...slaveEnv, LEXBUILDER_SLAVE_LISTEN: listen } });
}

describe("stopping the daemons with SIGTERM", () => {
  it("the master, the slave and the webapp each exit 0 within 2 s when idle", async () => {
    const slave = await restartSlave();
    const master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: { ...masterEnv, LOG_LEVEL: "debug" } });
    await master.started;
    await builderIdle();
    // The master's long poll to the slave is in flight (its debug line says it is starting):
    // it must not delay the stop.
    await waitUntil("the master's long poll", async () => master.output().includes('"msg":"long poll for the builder\'s news"'), 15_000);

    const port = await freePort();
    const webapp = spawn(process.execPath, [WEBAPP_MAIN], {
      env: {
        PATH: process.env.PATH ?? "",
        DATABASE_URL: db.url,
        LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${port}`,
        LEXBUILDER_WEBAPP_SECRET_FILE: join(tempDir("webapp"), "secret"),
        LEXBUILDER_ARTIFACTS_DIR: artifacts,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let webOut = "";
    webapp.stdout.on("data", (d) => (webOut += d));
    webapp.stderr.on("data", (d) => (webOut += d));
    const webExited = new Promise<number | null>((r) => webapp.on("exit", (code) => r(code)));
    await waitUntil("the webapp listening", async () => webOut.includes("web console listening") || (webapp.exitCode !== null && Promise.reject(new Error(webOut))), 15_000);
    expect((await fetch(`http://127.0.0.1:${port}/login`)).status).toBe(200);

    const web = await terminate(() => (webapp.kill("SIGTERM"), webExited), IDLE_BOUND_MS);
    expect(web.code, webOut).toBe(0);
    expect(web.ms).toBeLessThanOrEqual(IDLE_BOUND_MS);

    const m = await terminate(master.stop, IDLE_BOUND_MS);
    expect(m.code, master.output()).toBe(0);
    expect(m.ms).toBeLessThanOrEqual(IDLE_BOUND_MS);

    const s = await terminate(slave.stop, IDLE_BOUND_MS);
    expect(s.code, slave.output()).toBe(0);
    expect(s.ms).toBeLessThanOrEqual(IDLE_BOUND_MS);
  }, 90_000);

  it("the master exits 0 within 5 s during a build, and the next master carries the build on to SUCCEEDED", async () => {
    const slave = await restartSlave();
    let master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: masterEnv });
    await master.started;
    await builderIdle();
    const id = await requestBuild("demo");
    await waitForBuildState(db.pool, id, ["BUILDING"], 30_000);

    const m = await terminate(master.stop, BUSY_BOUND_MS);
    expect(m.code, master.output()).toBe(0);
    expect(m.ms).toBeLessThanOrEqual(BUSY_BOUND_MS);
    // What the stop left behind is a state a master resumes: the build is still BUILDING.
    expect((await db.pool.query("SELECT state FROM builds WHERE id = $1", [id])).rows[0].state).toBe("BUILDING");

    master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: masterEnv });
    await master.started;
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 60_000);
    expect(done.failure_message).toBeNull();
    expect(done.state).toBe("SUCCEEDED");
    expect(done.attempt).toBe(1);
    await builderIdle();
    expect((await terminate(master.stop, IDLE_BOUND_MS)).code).toBe(0);
    await slave.stop();
  }, 120_000);

  it("the slave exits 0 within 5 s during a build, and after it restarts the build is built again to SUCCEEDED", async () => {
    let slave = await restartSlave();
    const master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: masterEnv });
    await master.started;
    await builderIdle();
    const id = await requestBuild("demo");
    await waitForBuildState(db.pool, id, ["BUILDING"], 30_000);
    // Into lb build (the fake one runs 6 s), with its processes to stop: its first progress
    // line has reached the build's log.
    await waitUntil("lb build's first progress line in the log", async () => (await readLog(db.pool, id, 0)).toString("utf8").includes("I: Progress 1/6"), 30_000);

    const s = await terminate(slave.stop, BUSY_BOUND_MS);
    expect(s.code, slave.output()).toBe(0);
    expect(s.ms).toBeLessThanOrEqual(BUSY_BOUND_MS);

    slave = await restartSlave();
    const done = await waitForBuildState(db.pool, id, ["SUCCEEDED", "FAILED"], 90_000);
    expect(done.state, done.failure_message ?? "").toBe("SUCCEEDED");
    expect(done.attempt).toBe(2);
    // The first attempt ended as the builder's failure (the restarted slave reports it, or the
    // master gave up on the slave first when the restart was slow) and was re-queued.
    expect(done.failure_message).toMatch(/stopped during the build|stopped answering/);
    expect((await terminate(master.stop, IDLE_BOUND_MS)).code).toBe(0);
    await slave.stop();
  }, 150_000);
});
