// Test support (not part of the package: never compiled into dist/ nor installed by the .debs;
// vitest reads it from source through the alias @lexbuilder/shared-models/testing).
// Test support: one PostgreSQL cluster per test run (DATABASE_URL, or the embedded one), a
// migrated template database, and a fresh database cloned from it for each test file.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { createPool, type Pool } from "../src/db/pool.js";
import { migrate } from "../src/db/migrate.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";

const ADMIN_ENV = "LEXBUILDER_TEST_ADMIN_URL";
const TEMPLATE_ENV = "LEXBUILDER_TEST_TEMPLATE";

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = "/" + database;
  return u.toString();
}

/** For vitest's globalSetup: start (or adopt) the cluster and build the template. */
export async function setupTestCluster(): Promise<() => Promise<void>> {
  let adminUrl = process.env.DATABASE_URL;
  let stopCluster: (() => Promise<void>) | null = null;
  if (!adminUrl) {
    const dir = await mkdtemp(join(tmpdir(), "lexbuilder-test-pg-"));
    const db = await startEmbeddedPostgres({ dataDir: join(dir, "data"), persistent: false });
    adminUrl = db.adminUrl;
    stopCluster = db.stop;
  }
  const template = `lexbuilder_tpl_${process.pid}_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${template}"`);
  await admin.end();
  const pool = createPool(withDatabase(adminUrl, template), { max: 1 });
  await migrate(pool);
  await pool.end();
  process.env[ADMIN_ENV] = adminUrl;
  process.env[TEMPLATE_ENV] = template;
  return async () => {
    await dropTestDatabasesLike(adminUrl!, template).catch(() => {});
    if (stopCluster) await stopCluster();
  };
}

async function dropTestDatabasesLike(adminUrl: string, template: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2",
      [template, `${template}_t%`],
    );
    for (const { datname } of rows) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export interface TestDatabase {
  url: string;
  pool: Pool;
  /** Drops the database (closing the pool first). */
  drop(): Promise<void>;
}

/** A fresh migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env[ADMIN_ENV];
  const template = process.env[TEMPLATE_ENV];
  if (!adminUrl || !template) throw new Error("No test PostgreSQL: run the tests through vitest (its globalSetup starts one).");
  const name = `${template}_t${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const pool = createPool(url, { max: 10 });
  return {
    url,
    pool,
    drop: async () => {
      await pool.end().catch(() => {});
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => c.end());
    },
  };
}
export { driveBuild, addDriverBuilder, type DriveOptions } from "./drive.js";
export { waitUntil } from "./wait.js";
export { recordNotifications, type NotificationRecorder } from "./notifications.js";
