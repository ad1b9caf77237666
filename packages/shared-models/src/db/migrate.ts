// Applies migrations/NNN_name.sql in order, each in its own transaction, recorded in
// schema_migrations; an advisory lock keeps two migrators from racing.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pool } from "./pool.js";

const MIGRATE_LOCK_KEY = 4_217_001; // arbitrary, fixed: "lexbuilder migrate"

/** The repository's migrations/ (also the layout the .debs install: <root>/migrations). */
export function defaultMigrationsDir(): string {
  if (process.env.LEXBUILDER_MIGRATIONS_DIR) return process.env.LEXBUILDER_MIGRATIONS_DIR;
  // <root>/packages/shared-models/{src,dist}/db/migrate.{ts,js}
  return resolve(dirname(fileURLToPath(import.meta.url)), "../../../../migrations");
}

export interface MigrationFile {
  version: string;
  name: string;
  path: string;
}

export async function listMigrations(dir = defaultMigrationsDir()): Promise<MigrationFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new Error(`The migrations folder ${dir} cannot be read; set LEXBUILDER_MIGRATIONS_DIR to where the migrations are installed.`);
  }
  return names
    .filter((n) => /^[0-9]{3}_[a-z0-9_]+\.sql$/.test(n))
    .sort()
    .map((n) => ({ version: n.slice(0, 3), name: n.slice(4, -4), path: join(dir, n) }));
}

/** Returns the versions it applied (empty when the schema was already current). */
export async function migrate(pool: Pool, dir = defaultMigrationsDir()): Promise<string[]> {
  const files = await listMigrations(dir);
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATE_LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set((await client.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version));
    for (const file of files) {
      if (done.has(file.version)) continue;
      const sql = await readFile(file.path, "utf8");
      await client.query("BEGIN");
      try {
        await client.query(sql);
        await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [file.version, file.name]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw new Error(`Migration ${file.version}_${file.name} failed: ${(err as Error).message}`);
      }
      applied.push(file.version);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATE_LOCK_KEY]).catch(() => {});
    client.release();
  }
  return applied;
}

/** Versions known to the database but absent from disk, and files not yet applied. */
export async function migrationStatus(pool: Pool, dir = defaultMigrationsDir()): Promise<{ pending: string[]; current: boolean }> {
  const files = await listMigrations(dir);
  const exists = await pool.query("SELECT to_regclass('schema_migrations') AS t");
  const done = exists.rows[0].t
    ? new Set((await pool.query<{ version: string }>("SELECT version FROM schema_migrations")).rows.map((r) => r.version))
    : new Set<string>();
  const pending = files.filter((f) => !done.has(f.version)).map((f) => `${f.version}_${f.name}`);
  return { pending, current: pending.length === 0 };
}
