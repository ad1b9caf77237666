import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";
import { listMigrations, migrate, migrationStatus } from "../src/db/migrate.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe("migrations", () => {
  it("are applied already in the template and idempotent on a second run", async () => {
    const files = await listMigrations();
    expect(files.length).toBeGreaterThan(0);
    expect(await migrate(db.pool)).toEqual([]);
    expect((await migrationStatus(db.pool)).current).toBe(true);
    const { rows } = await db.pool.query("SELECT version FROM schema_migrations ORDER BY version");
    expect(rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
  });

  it("two concurrent migrators do not collide", async () => {
    const results = await Promise.all([migrate(db.pool), migrate(db.pool)]);
    expect(results).toEqual([[], []]);
  });

  it("refuses states outside the state machine", async () => {
    const p = await db.pool.query(
      "INSERT INTO projects (name, config_url, architecture) VALUES ('p1', 'https://example.org/c.git', 'amd64') RETURNING id",
    );
    await expect(
      db.pool.query("INSERT INTO builds (project_id, state, reason, config_ref, architecture) VALUES ($1, 'RUNNING', 'manual', 'main', 'amd64')", [p.rows[0].id]),
    ).rejects.toThrow(/check constraint/);
  });
});
