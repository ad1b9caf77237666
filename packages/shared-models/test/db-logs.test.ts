import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";
import { createProject } from "../src/db/projects.js";
import { requestBuild } from "../src/db/builds.js";
import { appendLog, deleteLog, getLogSize, MAX_LOG_READ_BYTES, readLog } from "../src/db/logs.js";

let db: TestDatabase;
let n = 0;
async function newBuild(): Promise<number> {
  n++;
  const p = await createProject(db.pool, { name: `log${n}`, configUrl: "https://example.org/c.git", architecture: "amd64" });
  return (await requestBuild(db.pool, { projectId: p.id, reason: "manual" })).id;
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe("appendLog", () => {
  it("appends at the current size and refuses stale offsets", async () => {
    const id = await newBuild();
    expect(await getLogSize(db.pool, id)).toBe(0);
    expect(await appendLog(db.pool, id, 0, Buffer.from("hello "))).toBe(6);
    expect(await appendLog(db.pool, id, 0, Buffer.from("again"))).toBeNull();
    expect(await appendLog(db.pool, id, 3, Buffer.from("x"))).toBeNull();
    expect(await appendLog(db.pool, id, 7, Buffer.from("x"))).toBeNull();
    expect(await appendLog(db.pool, id, 6, Buffer.from("world\n"))).toBe(12);
    expect(await appendLog(db.pool, id, 12, Buffer.alloc(0))).toBe(12);
    expect(await appendLog(db.pool, id, 11, Buffer.alloc(0))).toBeNull();
    expect((await readLog(db.pool, id, 0, 100)).toString()).toBe("hello world\n");
    expect(await getLogSize(db.pool, id)).toBe(12);
    expect(await appendLog(db.pool, 987654, 0, Buffer.from("x"))).toBeNull();
    expect(await getLogSize(db.pool, 987654)).toBeNull();
    await expect(appendLog(db.pool, id, -1, Buffer.from("x"))).rejects.toThrow(/non-negative/);
  });

  it("lets exactly one of two concurrent appends at one offset through", async () => {
    const id = await newBuild();
    await appendLog(db.pool, id, 0, Buffer.from("start\n"));
    for (let round = 0; round < 10; round++) {
      const size = (await getLogSize(db.pool, id))!;
      const [a, b] = await Promise.all([
        appendLog(db.pool, id, size, Buffer.from(`A${round}\n`)),
        appendLog(db.pool, id, size, Buffer.from(`B${round}\n`)),
      ]);
      expect([a, b].filter((x) => x !== null)).toEqual([size + 3]);
    }
    const text = (await readLog(db.pool, id, 0)).toString();
    expect(text.split("\n").filter(Boolean)).toHaveLength(11);
    expect(text.length).toBe(6 + 10 * 3);
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM build_log_chunks WHERE build_id = $1", [id]);
    expect(rows[0].n).toBe(11);
  });

  it("keeps binary bytes intact", async () => {
    const id = await newBuild();
    const bytes = randomBytes(70_000);
    expect(await appendLog(db.pool, id, 0, bytes.subarray(0, 30_000))).toBe(30_000);
    expect(await appendLog(db.pool, id, 30_000, bytes.subarray(30_000))).toBe(70_000);
    expect((await readLog(db.pool, id, 0, 100_000)).equals(bytes)).toBe(true);
  });
});

describe("readLog", () => {
  it("reads any range across chunk boundaries", async () => {
    const id = await newBuild();
    const whole = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz");
    // Chunks of uneven sizes: 1, 2, 3, … bytes.
    let off = 0;
    for (let len = 1; off < whole.length; len++) {
      const part = whole.subarray(off, Math.min(whole.length, off + len));
      expect(await appendLog(db.pool, id, off, part)).toBe(off + part.length);
      off += part.length;
    }
    for (let start = 0; start <= whole.length + 2; start++) {
      for (const max of [0, 1, 2, 5, 7, 100]) {
        const got = await readLog(db.pool, id, start, max);
        expect(got.toString(), `offset ${start} max ${max}`).toBe(whole.subarray(start, start + max).toString());
      }
    }
  });

  it("reads the tail of a 50 MB log quickly, fetching only the overlapping chunks", async () => {
    const id = await newBuild();
    const chunk = Buffer.alloc(64 * 1024, "abcdefghijklmnopqrstuvwxyz\n");
    const chunks = 800; // 50 MiB
    // Insert directly (the append path is covered above); keep log_size consistent.
    await db.pool.query(
      `INSERT INTO build_log_chunks (build_id, byte_offset, data) SELECT $1, g * $2::bigint, $3::bytea FROM generate_series(0, $4 - 1) g`,
      [id, chunk.length, chunk, chunks],
    );
    await db.pool.query("UPDATE builds SET log_size = $2 WHERE id = $1", [id, chunk.length * chunks]);
    const size = (await getLogSize(db.pool, id))!;
    expect(size).toBe(50 * 1024 * 1024);
    const start = size - 100_000;
    const t0 = performance.now();
    const tail = await readLog(db.pool, id, start, 200_000);
    const ms = performance.now() - t0;
    expect(tail.length).toBe(100_000);
    const wholeOffset = start % chunk.length;
    expect(tail.subarray(0, 30).toString()).toBe(Buffer.concat([chunk, chunk]).subarray(wholeOffset, wholeOffset + 30).toString());
    expect(ms).toBeLessThan(1000);
    const { rows } = await db.pool.query(
      `EXPLAIN (ANALYZE, FORMAT JSON) SELECT c.byte_offset FROM build_log_chunks c WHERE c.build_id = $1
         AND c.byte_offset >= coalesce((SELECT max(s.byte_offset) FROM build_log_chunks s WHERE s.build_id = $1 AND s.byte_offset <= $2), 0)
         AND c.byte_offset < $3`,
      [id, start, start + 200_000],
    );
    const plan = JSON.stringify(rows[0]["QUERY PLAN"]);
    expect(plan).not.toMatch(/"Seq Scan"/);
    const big = await readLog(db.pool, id, 0, 64 * 1024 * 1024);
    expect(big.length).toBe(MAX_LOG_READ_BYTES);
  });

  it("deleteLog removes the chunks and starts the log over", async () => {
    const id = await newBuild();
    await appendLog(db.pool, id, 0, Buffer.from("first attempt\n"));
    expect(await deleteLog(db.pool, id)).toBe(14);
    expect(await getLogSize(db.pool, id)).toBe(0);
    expect((await readLog(db.pool, id, 0)).length).toBe(0);
    expect(await appendLog(db.pool, id, 0, Buffer.from("second\n"))).toBe(7);
  });
});
