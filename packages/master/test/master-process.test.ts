// lexbuilder-master as a process: configuration errors are one sentence and exit 2; losing the
// lock connection stops the master at once with a non-zero exit (systemd restarts it).
import { execFile } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { MASTER_MAIN, startMaster, tempDir, waitUntil } from "../../../test/fullstack-helpers.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MASTER_MAIN, ...args], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("lexbuilder-master", () => {
  it("prints its help", async () => {
    const r = await run(["--help"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: lexbuilder-master [--standby]");
  });

  it("refuses wrong configuration with one sentence and exit 2", async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /^lexbuilder-master: DATABASE_URL is not set/],
      [{ DATABASE_URL: db.url, LEXBUILDER_MASTER_REQUEUE_LIMIT: "many" }, /^lexbuilder-master: LEXBUILDER_MASTER_REQUEUE_LIMIT must be a whole number/],
      [{ DATABASE_URL: db.url, LEXBUILDER_ARTIFACTS_DIR: "relative/dir" }, /^lexbuilder-master: LEXBUILDER_ARTIFACTS_DIR must be an absolute path/],
      [{ DATABASE_URL: db.url, LEXBUILDER_MASTER_METRICS_LISTEN: "nowhere" }, /^lexbuilder-master: LEXBUILDER_MASTER_METRICS_LISTEN must look like host:port/],
      [{ DATABASE_URL: db.url, LEXBUILDER_MASTER_STATUS_WAIT: "30", LEXBUILDER_MASTER_CALL_TIMEOUT: "20" }, /must be longer than/],
      [{ DATABASE_URL: db.url, LEXBUILDER_MASTER_DB_POOL: "1" }, /^lexbuilder-master: LEXBUILDER_MASTER_DB_POOL must be between 2 and 500/],
    ];
    for (const [env, message] of cases) {
      const r = await run([], env);
      expect(r.code, JSON.stringify(env)).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    const bad = await run(["--bogus"], { DATABASE_URL: db.url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("lexbuilder-master: unknown argument --bogus; see lexbuilder-master --help.\n");
  });

  it("exits non-zero at once when the connection holding the lock dies", async () => {
    const m = await startMaster({ databaseUrl: db.url, artifactsDir: tempDir("artifacts") });
    await m.started;
    const killed = await waitUntil("lock session", async () => {
      const { rows } = await db.pool.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'lexbuilder-master-lock' AND datname = current_database()",
      );
      return rows.length === 1 && rows[0].ok;
    });
    expect(killed).toBe(true);
    const code = await m.exited;
    expect(code).toBe(1);
    expect(m.output()).toContain("lost the master lock");
    // At once: the connection's own error or end said so, not the ping that runs every 2 s.
    expect(m.output()).toMatch(/"why":"the database connection holding the master lock (failed|closed)/);
  }, 30_000);
});
