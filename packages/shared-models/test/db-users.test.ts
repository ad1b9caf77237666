import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";
import {
  authenticateUser,
  createUser,
  getPasswordHash,
  getUserById,
  getUserByName,
  listUsers,
  recordLogin,
  replaceOutdatedHash,
  setUserActive,
  setUserPassword,
  setUserRole,
  UserExistsError,
} from "../src/db/users.js";
import { API_TOKEN_PATTERN, createApiToken, findUserByApiToken, hashApiToken, listApiTokens, revokeApiToken } from "../src/db/tokens.js";
import { listAudit, recordAudit } from "../src/db/audit.js";
import { generatePassword, hashPassword, needsRehash, verifyPassword } from "../src/passwords.js";
import { randomBytes, scryptSync } from "node:crypto";

/** A hash in the stored format made with the parameters used before (N=2^15), as old rows hold. */
function olderHash(plain: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(plain, salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  return `scrypt$32768$8$1$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe("passwords", () => {
  it("hashes with scrypt in the documented format and verifies", async () => {
    const h = await hashPassword("correct horse battery");
    expect(h).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    const salt = Buffer.from(h.split("$")[4]!, "base64url");
    expect(salt.length).toBe(16);
    expect(await verifyPassword("correct horse battery", h)).toBe(true);
    expect(await verifyPassword("correct horse batterY", h)).toBe(false);
    expect(await verifyPassword("", h)).toBe(false);
    const h2 = await hashPassword("correct horse battery");
    expect(h2).not.toBe(h); // salted
    expect(await verifyPassword("correct horse battery", h2)).toBe(true);
  });

  it("returns false for malformed or hostile stored hashes instead of throwing", async () => {
    const h = await hashPassword("pw-1234567890");
    const parts = h.split("$");
    for (const bad of [
      "",
      "plain",
      "scrypt$32768$8$1$short$short",
      ["bcrypt", ...parts.slice(1)].join("$"),
      ["scrypt", "1073741824", "8", "1", parts[4], parts[5]].join("$"), // absurd N
      ["scrypt", "1000", "8", "1", parts[4], parts[5]].join("$"), // N not a power of two
      ["scrypt", "32768", "99", "1", parts[4], parts[5]].join("$"),
    ]) {
      expect(await verifyPassword("pw-1234567890", bad!), bad).toBe(false);
    }
  });

  it("generates passwords from an unambiguous alphabet", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const p = generatePassword();
      expect(p).toMatch(/^[a-km-zA-HJ-NP-Z2-9]{20}$/);
      seen.add(p);
    }
    expect(seen.size).toBe(50);
    expect(generatePassword(32)).toHaveLength(32);
  });
});

describe("users", () => {
  it("creates, reads, lists and changes users without exposing the hash", async () => {
    const hash = await hashPassword("alice-password");
    const u = await createUser(db.pool, { name: "alice", role: "admin", passwordHash: hash });
    expect(u).toMatchObject({ name: "alice", role: "admin", active: true, lastLoginAt: null });
    expect(u).not.toHaveProperty("passwordHash");
    expect(await getUserByName(db.pool, "alice")).toEqual(u);
    expect(await getUserById(db.pool, u.id)).toEqual(u);
    expect(await getUserByName(db.pool, "nobody")).toBeNull();
    await expect(createUser(db.pool, { name: "alice", role: "viewer", passwordHash: hash })).rejects.toBeInstanceOf(UserExistsError);
    await expect(createUser(db.pool, { name: "Bad Name", role: "viewer", passwordHash: hash })).rejects.toThrow(/users_name_check/);
    await createUser(db.pool, { name: "bob", role: "viewer", passwordHash: hash });
    expect((await listUsers(db.pool)).map((x) => x.name)).toEqual(["alice", "bob"]);
    expect(await setUserRole(db.pool, u.id, "builder")).toBe(true);
    expect(await setUserActive(db.pool, u.id, false)).toBe(true);
    expect(await getUserById(db.pool, u.id)).toMatchObject({ role: "builder", active: false });
    await recordLogin(db.pool, u.id);
    expect((await getUserById(db.pool, u.id))!.lastLoginAt).toBeInstanceOf(Date);
    expect(await getPasswordHash(db.pool, u.id)).toBe(hash);
    await expect(setUserPassword(db.pool, u.id, "plain-text-password")).rejects.toThrow(/hash/);
    expect(await setUserRole(db.pool, 999999, "admin")).toBe(false);
  });

  it("authenticates the right password of an active user only", async () => {
    const u = await createUser(db.pool, { name: "carol", role: "viewer", passwordHash: await hashPassword("carol-password") });
    expect(await authenticateUser(db.pool, "carol", "wrong-password")).toBeNull();
    const ok = await authenticateUser(db.pool, "carol", "carol-password");
    expect(ok).toMatchObject({ id: u.id, name: "carol" });
    expect(ok).not.toHaveProperty("passwordHash");
    expect((await getUserById(db.pool, u.id))!.lastLoginAt).toBeInstanceOf(Date);
    expect(await authenticateUser(db.pool, "nobody", "carol-password")).toBeNull();
    await setUserPassword(db.pool, u.id, await hashPassword("new-carol-password"));
    expect(await authenticateUser(db.pool, "carol", "carol-password")).toBeNull();
    expect(await authenticateUser(db.pool, "carol", "new-carol-password")).not.toBeNull();
    await setUserActive(db.pool, u.id, false);
    expect(await authenticateUser(db.pool, "carol", "new-carol-password")).toBeNull();
  });

  it("verifies a hash made with the older parameters and replaces it at the next successful login only", async () => {
    const old = olderHash("gus-password");
    expect(needsRehash(old)).toBe(true);
    const u = await createUser(db.pool, { name: "gus", role: "viewer", passwordHash: old });
    expect(await authenticateUser(db.pool, "gus", "wrong-password")).toBeNull();
    expect(await getPasswordHash(db.pool, u.id)).toBe(old);
    expect(await authenticateUser(db.pool, "gus", "gus-password")).toMatchObject({ id: u.id });
    const renewed = (await getPasswordHash(db.pool, u.id))!;
    expect(renewed).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(needsRehash(renewed)).toBe(false);
    expect(await verifyPassword("gus-password", renewed)).toBe(true);
    // The next login keeps the current hash.
    expect(await authenticateUser(db.pool, "gus", "gus-password")).not.toBeNull();
    expect(await getPasswordHash(db.pool, u.id)).toBe(renewed);
  });

  it("does not overwrite a password changed while an old hash was being replaced", async () => {
    const old = olderHash("hal-password");
    const u = await createUser(db.pool, { name: "hal", role: "viewer", passwordHash: old });
    const changed = await hashPassword("hal-new-password");
    await setUserPassword(db.pool, u.id, changed);
    expect(await replaceOutdatedHash(db.pool, u.id, old, await hashPassword("hal-password"))).toBe(false);
    expect(await getPasswordHash(db.pool, u.id)).toBe(changed);
  });
});

describe("API tokens", () => {
  it("stores only a hash and a prefix, and finds the owner", async () => {
    const u = await createUser(db.pool, { name: "dave", role: "builder", passwordHash: "scrypt$x" });
    const { id, token } = await createApiToken(db.pool, u.id, "CI");
    expect(token).toMatch(API_TOKEN_PATTERN);
    expect(Buffer.from(token.slice(4), "base64url")).toHaveLength(32);
    const { rows } = await db.pool.query("SELECT * FROM api_tokens WHERE id = $1", [id]);
    expect(rows[0].token_hash).toBe(hashApiToken(token));
    expect(rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(rows[0])).not.toContain(token);
    expect(token.startsWith(rows[0].token_prefix)).toBe(true);
    expect(rows[0].token_prefix.length).toBeLessThan(16);
    const found = await findUserByApiToken(db.pool, token);
    expect(found).toMatchObject({ id: u.id, name: "dave", role: "builder" });
    const [listed] = await listApiTokens(db.pool, u.id);
    expect(listed).toMatchObject({ id, label: "CI", prefix: rows[0].token_prefix, revokedAt: null });
    expect(listed!.lastUsedAt).toBeInstanceOf(Date);
    expect(listed).not.toHaveProperty("token_hash");
    // Used again within a minute: the same last_used_at (no write per request).
    const firstUse = listed!.lastUsedAt!.getTime();
    expect(await findUserByApiToken(db.pool, token)).not.toBeNull();
    expect((await listApiTokens(db.pool, u.id))[0]!.lastUsedAt!.getTime()).toBe(firstUse);
    await db.pool.query("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1", [id]);
    expect(await findUserByApiToken(db.pool, token)).not.toBeNull();
    expect(Date.now() - (await listApiTokens(db.pool, u.id))[0]!.lastUsedAt!.getTime()).toBeLessThan(60_000);
  });

  it("refuses unknown, malformed, revoked tokens and inactive users", async () => {
    const u = await createUser(db.pool, { name: "erin", role: "viewer", passwordHash: "scrypt$x" });
    const other = await createUser(db.pool, { name: "frank", role: "viewer", passwordHash: "scrypt$x" });
    const a = await createApiToken(db.pool, u.id, "a");
    const b = await createApiToken(db.pool, u.id, "b");
    expect(await findUserByApiToken(db.pool, "lxb_" + "A".repeat(43))).toBeNull();
    expect(await findUserByApiToken(db.pool, "not-a-token")).toBeNull();
    expect(await findUserByApiToken(db.pool, a.token + "x")).toBeNull();
    expect(await revokeApiToken(db.pool, other.id, a.id)).toBe(false); // not frank's
    expect(await findUserByApiToken(db.pool, a.token)).not.toBeNull();
    expect(await revokeApiToken(db.pool, u.id, a.id)).toBe(true);
    expect(await revokeApiToken(db.pool, u.id, a.id)).toBe(false);
    expect(await findUserByApiToken(db.pool, a.token)).toBeNull();
    expect(await findUserByApiToken(db.pool, b.token)).not.toBeNull();
    await setUserActive(db.pool, u.id, false);
    expect(await findUserByApiToken(db.pool, b.token)).toBeNull();
    await setUserActive(db.pool, u.id, true);
    expect(await findUserByApiToken(db.pool, b.token)).not.toBeNull();
  });
});

describe("audit", () => {
  it("records and lists newest first with keyset paging and filters", async () => {
    const u = await createUser(db.pool, { name: "auditor", role: "admin", passwordHash: "scrypt$x" });
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await recordAudit(db.pool, { userId: u.id, actor: "auditor", action: "project.update", objectType: "project", objectId: i, details: { i } }));
    }
    ids.push(await recordAudit(db.pool, { actor: "master", action: "builder.disable", objectType: "builder", objectId: "7" }));
    const page = await listAudit(db.pool, { limit: 2 });
    expect(page.map((e) => e.id)).toEqual([ids[5], ids[4]]);
    expect(page[0]).toMatchObject({ actor: "master", userId: null, action: "builder.disable", objectType: "builder", objectId: "7", details: {} });
    expect(page[0]!.at).toBeInstanceOf(Date);
    const next = await listAudit(db.pool, { limit: 2, before: page[1]!.id });
    expect(next.map((e) => e.id)).toEqual([ids[3], ids[2]]);
    expect(next[0]).toMatchObject({ userId: u.id, objectId: "3", details: { i: 3 } });
    const one = await listAudit(db.pool, { objectType: "project", objectId: 1 });
    expect(one.map((e) => e.id)).toEqual([ids[1]]);
  });
});
