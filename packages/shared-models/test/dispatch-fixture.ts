// A database for dispatch tests: emptied of builds and builders before each test, with makers
// for an idle builder of given architectures and a project of given architecture and priority.
import { afterAll, beforeAll, beforeEach } from "vitest";
import { addBuilder, createProject } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";

export interface DispatchFixture {
  /** Set in beforeAll. */
  db: TestDatabase;
  builder(archs: string[], ready?: boolean): Promise<number>;
  project(arch?: string, priority?: number): Promise<number>;
}

export function useDispatchDatabase(): DispatchFixture {
  let seq = 0;
  const f: DispatchFixture = {
    db: undefined as unknown as TestDatabase,
    async builder(archs, ready = true) {
      const b = await addBuilder(f.db.pool, { name: `b${++seq}`, url: "http://127.0.0.1:1", token: "t" });
      await f.db.pool.query("UPDATE builders SET architectures = $2, ready = $3, state = 'IDLE' WHERE id = $1", [b.id, archs, ready]);
      return b.id;
    },
    async project(arch = "amd64", priority = 0) {
      const p = await createProject(f.db.pool, { name: `p${++seq}`, configUrl: "https://example.org/c.git", architecture: arch, priority });
      return p.id;
    },
  };
  beforeAll(async () => {
    f.db = await createTestDatabase();
  });
  afterAll(async () => {
    await f.db?.drop();
  });
  beforeEach(async () => {
    await f.db.pool.query("UPDATE builders SET current_build_id = NULL");
    await f.db.pool.query("DELETE FROM builds");
    await f.db.pool.query("DELETE FROM builders");
  });
  return f;
}
