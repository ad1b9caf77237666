// Users of the console and the API. The password hash never leaves this file except through
// getPasswordHash (for login); User has no hash, so it is safe to render.
import { withTransaction, type Pool, type Queryable } from "./pool.js";
import { isUniqueViolation } from "./pool.js";
import { isLookupName, isValidId } from "./projects.js";
import type { Role } from "../states.js";
import { hashPassword, needsRehash, verifyPassword } from "../passwords.js";

export interface User {
  id: number;
  name: string;
  role: Role;
  active: boolean;
  createdAt: Date;
  lastLoginAt: Date | null;
}

export const USER_COLUMNS = (a: string) =>
  `${a}.id, ${a}.name, ${a}.role, ${a}.active, ${a}.created_at AS "createdAt", ${a}.last_login_at AS "lastLoginAt"`;

export class UserExistsError extends Error {
  constructor(readonly userName: string) {
    super(`A user named ${userName} already exists; choose another name.`);
    this.name = "UserExistsError";
  }
}

export async function createUser(db: Queryable, input: { name: string; role: Role; passwordHash: string }): Promise<User> {
  try {
    const { rows } = await db.query<User>(
      `INSERT INTO users AS u (name, role, password_hash) VALUES ($1, $2, $3) RETURNING ${USER_COLUMNS("u")}`,
      [input.name, input.role, input.passwordHash],
    );
    return rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err, "users_name_key")) throw new UserExistsError(input.name);
    throw err;
  }
}

export async function getUserByName(db: Queryable, name: string): Promise<User | null> {
  if (!isLookupName(name)) return null;
  const { rows } = await db.query<User>(`SELECT ${USER_COLUMNS("u")} FROM users u WHERE u.name = $1`, [name]);
  return rows[0] ?? null;
}

export async function getUserById(db: Queryable, id: number): Promise<User | null> {
  if (!isValidId(id)) return null;
  const { rows } = await db.query<User>(`SELECT ${USER_COLUMNS("u")} FROM users u WHERE u.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function listUsers(db: Queryable): Promise<User[]> {
  const { rows } = await db.query<User>(`SELECT ${USER_COLUMNS("u")} FROM users u ORDER BY u.name`);
  return rows;
}

export async function setUserRole(db: Queryable, id: number, role: Role): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE users SET role = $2 WHERE id = $1", [id, role]);
  return (rowCount ?? 0) > 0;
}

export async function setUserActive(db: Queryable, id: number, active: boolean): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE users SET active = $2 WHERE id = $1", [id, active]);
  return (rowCount ?? 0) > 0;
}

/** Takes a hash (from hashPassword), never a plain password. */
export async function setUserPassword(db: Queryable, id: number, passwordHash: string): Promise<boolean> {
  if (!passwordHash.startsWith("scrypt$")) throw new Error("setUserPassword takes a hash from hashPassword, not a plain password.");
  const { rowCount } = await db.query("UPDATE users SET password_hash = $2 WHERE id = $1", [id, passwordHash]);
  return (rowCount ?? 0) > 0;
}

/**
 * Sets a new password and ends every other session of the user in one transaction, so a
 * session someone else may hold (a stolen cookie, a forgotten browser) does not outlive the
 * password it was opened with. `keepSid`: the session that changed it stays logged in.
 * Returns how many sessions were ended.
 */
export async function changePasswordEndingOtherSessions(pool: Pool, id: number, passwordHash: string, keepSid: string): Promise<number> {
  return withTransaction(pool, async (c) => {
    if (!(await setUserPassword(c, id, passwordHash))) throw new Error(`There is no user #${id}.`);
    const { rowCount } = await c.query("DELETE FROM sessions WHERE sess->>'userId' = $1::text AND sid <> $2", [String(id), keepSid]);
    return rowCount ?? 0;
  });
}

export async function recordLogin(db: Queryable, id: number): Promise<void> {
  await db.query("UPDATE users SET last_login_at = now() WHERE id = $1", [id]);
}

export async function getPasswordHash(db: Queryable, id: number): Promise<string | null> {
  const { rows } = await db.query<{ h: string }>("SELECT password_hash AS h FROM users WHERE id = $1", [id]);
  return rows[0]?.h ?? null;
}

/**
 * Stores a hash made with the current parameters in place of `oldHash`, unless the password
 * changed meanwhile (a concurrent change or login wins). True if it was replaced.
 */
export async function replaceOutdatedHash(db: Queryable, id: number, oldHash: string, newHash: string): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2", [id, oldHash, newHash]);
  return (rowCount ?? 0) > 0;
}

let dummyHash: Promise<string> | null = null;

/**
 * Login: the active user with this name and password, or null. Spends the same scrypt time
 * whether or not the user exists, so response times do not reveal user names. Records the login.
 */
export async function authenticateUser(db: Queryable, name: string, password: string): Promise<User | null> {
  const { rows } = await db.query<User & { passwordHash: string }>(
    `SELECT ${USER_COLUMNS("u")}, u.password_hash AS "passwordHash" FROM users u WHERE u.name = $1`,
    [name],
  );
  const row = rows[0];
  if (!row) {
    dummyHash ??= hashPassword("lexbuilder-dummy-password");
    await verifyPassword(password, await dummyHash);
    return null;
  }
  const ok = await verifyPassword(password, row.passwordHash);
  if (!ok || !row.active) return null;
  if (needsRehash(row.passwordHash)) await replaceOutdatedHash(db, row.id, row.passwordHash, await hashPassword(password));
  await recordLogin(db, row.id);
  const { passwordHash: _hash, ...user } = row;
  return { ...user, lastLoginAt: new Date() };
}

// ---- Sessions read together with their user (the web console's per-request read) ----

/**
 * A live session (the connect-pg-simple layout: sid, sess json, expire) and, when it names a
 * user (sess.userId), that user's current row, in one round trip: the console re-reads the
 * user on every request (a deactivated or demoted user loses access at once) and this saves
 * a second query. Null when the session is unknown or expired; user is null when the session
 * has no user or the user no longer exists.
 */
export async function getSessionWithUser(db: Queryable, sid: string): Promise<{ sess: Record<string, unknown>; user: User | null } | null> {
  const { rows } = await db.query<{ sess: Record<string, unknown> | string; user: User | null }>({
    name: "lexbuilder_session_with_user",
    text: `SELECT s.sess,
                  (SELECT json_build_object('id', u.id, 'name', u.name, 'role', u.role, 'active', u.active,
                                            'createdAt', u.created_at, 'lastLoginAt', u.last_login_at)
                     FROM users u
                    WHERE s.sess->>'userId' ~ '^[1-9][0-9]{0,14}$' AND u.id = (s.sess->>'userId')::bigint) AS "user"
             FROM sessions s
            WHERE s.sid = $1 AND s.expire >= to_timestamp($2)`,
    values: [sid, Date.now() / 1000],
  });
  const row = rows[0];
  if (!row) return null;
  const sess = typeof row.sess === "string" ? (JSON.parse(row.sess) as Record<string, unknown>) : row.sess;
  const u = row.user;
  const user: User | null = u
    ? { ...u, createdAt: new Date(u.createdAt), lastLoginAt: u.lastLoginAt === null ? null : new Date(u.lastLoginAt) }
    : null;
  return { sess, user };
}
