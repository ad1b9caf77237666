// The per-request shortcuts of the pages: the session and its user in one query, and the
// cached log tails of finished builds. Both must never show something stale.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, getSessionWithUser, setUserActive, setUserRole } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { LogTailCache } from "../src/logtext.js";

describe("getSessionWithUser", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function addSession(sid: string, sess: Record<string, unknown>, expiresInSeconds: number): Promise<void> {
    await db.pool.query("INSERT INTO sessions (sid, sess, expire) VALUES ($1, $2, to_timestamp($3))", [sid, JSON.stringify(sess), Date.now() / 1000 + expiresInSeconds]);
  }

  it("returns the session and its user's current row, re-read every time", async () => {
    const u = await createUser(db.pool, { name: "ada", role: "builder", passwordHash: "x" });
    await addSession("s1", { cookie: { path: "/" }, userId: u.id, csrf: "t" }, 3600);
    const first = await getSessionWithUser(db.pool, "s1");
    expect(first!.sess).toEqual({ cookie: { path: "/" }, userId: u.id, csrf: "t" });
    expect(first!.user).toEqual({ id: u.id, name: "ada", role: "builder", active: true, createdAt: u.createdAt, lastLoginAt: null });
    expect(first!.user!.createdAt).toBeInstanceOf(Date);
    await setUserRole(db.pool, u.id, "viewer");
    await setUserActive(db.pool, u.id, false);
    const second = await getSessionWithUser(db.pool, "s1");
    expect(second!.user).toMatchObject({ role: "viewer", active: false });
  });

  it("gives no user for an anonymous session, a vanished user or a userId that is not an id", async () => {
    await addSession("anon", { cookie: {}, csrf: "t" }, 3600);
    expect(await getSessionWithUser(db.pool, "anon")).toEqual({ sess: { cookie: {}, csrf: "t" }, user: null });
    await addSession("gone", { cookie: {}, userId: 987654 }, 3600);
    expect((await getSessionWithUser(db.pool, "gone"))!.user).toBeNull();
    await addSession("odd", { cookie: {}, userId: "1; DROP TABLE users" }, 3600);
    expect((await getSessionWithUser(db.pool, "odd"))!.user).toBeNull();
  });

  it("finds nothing for an expired or unknown session", async () => {
    await addSession("old", { cookie: {} }, -10);
    expect(await getSessionWithUser(db.pool, "old")).toBeNull();
    expect(await getSessionWithUser(db.pool, "nope")).toBeNull();
  });
});

describe("LogTailCache", () => {
  it("reads a (build, start, size) once, reads again when the size differs, and forgets the least recently used", async () => {
    const cache = new LogTailCache(2);
    let reads = 0;
    const load = (text: string) => async () => {
      reads++;
      return Buffer.from(text);
    };
    expect((await cache.get(1, 0, 3, load("abc"))).toString()).toBe("abc");
    expect((await cache.get(1, 0, 3, load("xxx"))).toString()).toBe("abc");
    expect(reads).toBe(1);
    expect((await cache.get(1, 0, 4, load("abcd"))).toString()).toBe("abcd");
    expect(reads).toBe(2);
    // (1,0,3) was used before (1,0,4): adding a third entry evicts it.
    await cache.get(2, 0, 1, load("z"));
    expect(cache.size).toBe(2);
    expect((await cache.get(1, 0, 3, load("new"))).toString()).toBe("new");
    expect(reads).toBe(4);
  });

  it("does not remember a failed read", async () => {
    const cache = new LogTailCache();
    await expect(cache.get(7, 0, 10, () => Promise.reject(new Error("connection lost")))).rejects.toThrow("connection lost");
    expect((await cache.get(7, 0, 10, async () => Buffer.from("ok"))).toString()).toBe("ok");
  });
});
