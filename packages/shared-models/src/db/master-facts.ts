// Facts the master publishes about its configuration for the console (e.g. whether mail is
// configured), written at its start.
import type { Queryable } from "./pool.js";

export async function setMasterFact(db: Queryable, name: string, value: unknown): Promise<void> {
  await db.query(
    `INSERT INTO master_facts (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
    [name, JSON.stringify(value)],
  );
}

export async function getMasterFact<T>(db: Queryable, name: string): Promise<T | null> {
  const { rows } = await db.query<{ value: T }>("SELECT value FROM master_facts WHERE name = $1", [name]);
  return rows[0]?.value ?? null;
}
