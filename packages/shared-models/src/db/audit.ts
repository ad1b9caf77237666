// The audit log: who did what, when. Written in the same transaction as the change it records.
import type { Queryable } from "./pool.js";
import { clampLimit, isValidId } from "./projects.js";

export interface AuditEntry {
  id: number;
  at: Date;
  userId: number | null;
  actor: string;
  action: string;
  objectType: string;
  objectId: string | null;
  details: Record<string, unknown>;
}

export interface AuditInput {
  userId?: number | null;
  /** A user name, or 'master', 'admin-cli', 'scheduler'. */
  actor: string;
  /** e.g. 'build.request', 'project.update'. */
  action: string;
  objectType: string;
  objectId?: string | number | null;
  details?: Record<string, unknown>;
}

export async function recordAudit(db: Queryable, entry: AuditInput): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO audit_log (user_id, actor, action, object_type, object_id, details)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [
      entry.userId ?? null,
      entry.actor,
      entry.action,
      entry.objectType,
      entry.objectId == null ? null : String(entry.objectId),
      JSON.stringify(entry.details ?? {}),
    ],
  );
  return rows[0]!.id;
}

/** Newest first; `before` is an entry id (keyset pagination). At most 500. */
export async function listAudit(
  db: Queryable,
  options: { limit?: number; before?: number | null; objectType?: string; objectId?: string | number } = {},
): Promise<AuditEntry[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (options.before !== undefined && options.before !== null) {
    if (!isValidId(options.before)) return [];
    params.push(options.before);
    where.push(`id < $${params.length}`);
  }
  if (options.objectType !== undefined) {
    params.push(options.objectType);
    where.push(`object_type = $${params.length}`);
  }
  if (options.objectId !== undefined) {
    params.push(String(options.objectId));
    where.push(`object_id = $${params.length}`);
  }
  params.push(clampLimit(options.limit, 100, 500));
  const { rows } = await db.query<AuditEntry>(
    `SELECT id, at, user_id AS "userId", actor, action, object_type AS "objectType", object_id AS "objectId", details
       FROM audit_log ${where.length ? "WHERE " + where.join(" AND ") : ""}
      ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}
