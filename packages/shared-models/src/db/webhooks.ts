// Webhooks, mail subscriptions and users' e-mail addresses: what the notifier sends to whom.
import type { WebhookEvent, WebhookFormat, SubscriptionMode } from "../rules/notifications.js";
import type { Queryable } from "./pool.js";

export interface Webhook {
  id: number;
  /** null: farm-wide (administrators'). */
  projectId: number | null;
  url: string;
  events: WebhookEvent[];
  format: WebhookFormat;
  active: boolean;
  createdAt: Date;
  /** The newest delivery's state, for the list. */
  lastDelivery: { state: string; at: Date } | null;
}

const WEBHOOK_COLUMNS = `w.id::int AS id, w.project_id::int AS "projectId", w.url, w.events, w.format, w.active,
  w.created_at AS "createdAt",
  (SELECT jsonb_build_object('state', d.state, 'at', d.created_at) FROM notification_deliveries d
    WHERE d.webhook_id = w.id ORDER BY d.created_at DESC LIMIT 1) AS "lastDelivery"`;

export interface WebhookInput {
  projectId: number | null;
  url: string;
  secret: string;
  events: WebhookEvent[];
  format: WebhookFormat;
  createdBy: number | null;
}

export async function createWebhook(db: Queryable, input: WebhookInput): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO webhooks (project_id, url, secret, events, format, created_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::int AS id`,
    [input.projectId, input.url, input.secret, input.events, input.format, input.createdBy],
  );
  return rows[0]!.id;
}

/** A project's hooks (projectId given) or the farm-wide ones (null). Secrets never leave here. */
export async function listWebhooks(db: Queryable, projectId: number | null): Promise<Webhook[]> {
  const { rows } = await db.query<Webhook>(
    `SELECT ${WEBHOOK_COLUMNS} FROM webhooks w WHERE w.project_id IS NOT DISTINCT FROM $1 ORDER BY w.id`,
    [projectId],
  );
  return rows.map(withDates);
}

/** The hook with `id` if it belongs to `projectId` (null: farm-wide). */
export async function getWebhook(db: Queryable, id: number, projectId: number | null): Promise<Webhook | null> {
  const { rows } = await db.query<Webhook>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1 AND w.project_id IS NOT DISTINCT FROM $2`, [
    id,
    projectId,
  ]);
  return rows[0] ? withDates(rows[0]) : null;
}

export async function deleteWebhook(db: Queryable, id: number, projectId: number | null): Promise<boolean> {
  const { rowCount } = await db.query("DELETE FROM webhooks WHERE id = $1 AND project_id IS NOT DISTINCT FROM $2", [id, projectId]);
  return (rowCount ?? 0) > 0;
}

export async function setWebhookActive(db: Queryable, id: number, projectId: number | null, active: boolean): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE webhooks SET active = $3 WHERE id = $1 AND project_id IS NOT DISTINCT FROM $2 AND active <> $3", [
    id,
    projectId,
    active,
  ]);
  return (rowCount ?? 0) > 0;
}

function withDates(w: Webhook): Webhook {
  const last = w.lastDelivery as unknown as { state: string; at: string } | null;
  return { ...w, lastDelivery: last ? { state: last.state, at: new Date(last.at) } : null };
}

// --- mail ---------------------------------------------------------------------------------

export async function setUserEmail(db: Queryable, userId: number, email: string | null): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE users SET email = $2 WHERE id = $1 AND email IS DISTINCT FROM $2", [userId, email]);
  return (rowCount ?? 0) > 0;
}

export async function getUserEmail(db: Queryable, userId: number): Promise<string | null> {
  const { rows } = await db.query<{ email: string | null }>("SELECT email FROM users WHERE id = $1", [userId]);
  return rows[0]?.email ?? null;
}

/** "none" removes the subscription. */
export async function setSubscription(db: Queryable, userId: number, projectId: number, mode: SubscriptionMode): Promise<void> {
  if (mode === "none") {
    await db.query("DELETE FROM subscriptions WHERE user_id = $1 AND project_id = $2", [userId, projectId]);
    return;
  }
  await db.query(
    `INSERT INTO subscriptions (user_id, project_id, mode) VALUES ($1, $2, $3)
     ON CONFLICT (user_id, project_id) DO UPDATE SET mode = EXCLUDED.mode`,
    [userId, projectId, mode],
  );
}

export async function getSubscription(db: Queryable, userId: number, projectId: number): Promise<SubscriptionMode> {
  const { rows } = await db.query<{ mode: SubscriptionMode }>("SELECT mode FROM subscriptions WHERE user_id = $1 AND project_id = $2", [userId, projectId]);
  return rows[0]?.mode ?? "none";
}

/** The user's subscriptions by project name (for the account page). */
export async function listSubscriptions(db: Queryable, userId: number): Promise<{ project: string; mode: SubscriptionMode }[]> {
  const { rows } = await db.query<{ project: string; mode: SubscriptionMode }>(
    `SELECT p.name AS project, s.mode FROM subscriptions s JOIN projects p ON p.id = s.project_id
      WHERE s.user_id = $1 ORDER BY p.name`,
    [userId],
  );
  return rows;
}
