// Personal API tokens: "lxb_" + 32 random bytes (base64url). Only the sha256 is stored, plus a
// short prefix to tell tokens apart on the user's page; the token itself is shown once.
import { createHash, randomBytes } from "node:crypto";
import type { Queryable } from "./pool.js";
import { USER_COLUMNS, type User } from "./users.js";

export const API_TOKEN_PATTERN = /^lxb_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 12;

export interface ApiToken {
  id: number;
  userId: number;
  label: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function hashApiToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export async function createApiToken(db: Queryable, userId: number, label: string): Promise<{ id: number; token: string }> {
  const token = "lxb_" + randomBytes(32).toString("base64url");
  const { rows } = await db.query<{ id: number }>(
    "INSERT INTO api_tokens (user_id, label, token_hash, token_prefix) VALUES ($1, $2, $3, $4) RETURNING id",
    [userId, label, hashApiToken(token), token.slice(0, PREFIX_LENGTH)],
  );
  return { id: rows[0]!.id, token };
}

/** The active owner of an unrevoked token, or null. Records the use. */
export async function findUserByApiToken(db: Queryable, token: string): Promise<User | null> {
  if (!API_TOKEN_PATTERN.test(token)) return null;
  // last_used_at is written at most once a minute per token, so a script hammering the API
  // with one token does not queue every request behind a lock on the same row.
  const { rows } = await db.query<User>(
    `WITH hit AS (
       SELECT t.id, t.user_id, (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds') AS stale
         FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.active
     ), touch AS (
       UPDATE api_tokens SET last_used_at = now() WHERE id IN (SELECT id FROM hit WHERE stale) RETURNING id
     )
     SELECT ${USER_COLUMNS("u")} FROM hit JOIN users u ON u.id = hit.user_id`,
    [hashApiToken(token)],
  );
  return rows[0] ?? null;
}

export async function listApiTokens(db: Queryable, userId: number): Promise<ApiToken[]> {
  const { rows } = await db.query<ApiToken>(
    `SELECT id, user_id AS "userId", label, token_prefix AS prefix, created_at AS "createdAt",
            last_used_at AS "lastUsedAt", revoked_at AS "revokedAt"
       FROM api_tokens WHERE user_id = $1 ORDER BY id DESC`,
    [userId],
  );
  return rows;
}

/** Revokes one of the user's own tokens. True if it was live. */
export async function revokeApiToken(db: Queryable, userId: number, tokenId: number): Promise<boolean> {
  const { rowCount } = await db.query(
    "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
    [tokenId, userId],
  );
  return (rowCount ?? 0) > 0;
}
