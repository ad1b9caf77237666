// The outbox: events written by triggers in the transaction of the change that caused them
// (migration 009), turned into deliveries by the master's notifier, and the deliveries' own
// life: claimed with a lease, attempted, retried, given up, redelivered on request.
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import type { Queryable, PoolClient } from "./pool.js";

export interface OutboxEvent {
  id: number;
  kind: string;
  createdAt: Date;
  facts: Record<string, unknown>;
  webhookId: number | null;
  project: { id: number; name: string; title: string; private: boolean } | null;
  build: {
    id: number;
    state: string;
    architecture: string;
    reason: string;
    milestone: string | null;
    configRef: string;
    configRevision: string | null;
    /** ISO 8601 (read through jsonb). */
    requestedAt: string;
    startedAt: string | null;
    finishedAt: string | null;
    failureKind: string | null;
    failureMessage: string | null;
    attempt: number;
    builder: string | null;
  } | null;
  builder: { id: number; name: string } | null;
}

/**
 * The oldest events not yet fanned out, locked for this transaction (SKIP LOCKED: a second
 * notifier takes others). Call inside the transaction that inserts their deliveries.
 */
export async function takePendingEvents(c: PoolClient, limit: number): Promise<OutboxEvent[]> {
  const { rows } = await c.query<OutboxEvent>(
    `WITH e AS (
       SELECT * FROM outbox_events WHERE fanned_out_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
     SELECT e.id::int AS id, e.kind, e.created_at AS "createdAt", e.facts, e.webhook_id::int AS "webhookId",
            CASE WHEN p.id IS NULL THEN NULL ELSE jsonb_build_object('id', p.id, 'name', p.name, 'title', p.title, 'private', p.private) END AS project,
            CASE WHEN b.id IS NULL THEN NULL ELSE jsonb_build_object(
              'id', b.id, 'state', b.state, 'architecture', b.architecture, 'reason', b.reason, 'milestone', b.milestone,
              'configRef', b.config_ref, 'configRevision', b.config_revision, 'requestedAt', b.requested_at,
              'startedAt', b.started_at, 'finishedAt', b.finished_at, 'failureKind', b.failure_kind,
              'failureMessage', b.failure_message, 'attempt', b.attempt, 'builder', bb.name) END AS build,
            CASE WHEN bl.id IS NULL THEN NULL ELSE jsonb_build_object('id', bl.id, 'name', bl.name) END AS builder
       FROM e
       LEFT JOIN projects p ON p.id = e.project_id
       LEFT JOIN builds b ON b.id = e.build_id
       LEFT JOIN builders bb ON bb.id = b.builder_id
       LEFT JOIN builders bl ON bl.id = e.builder_id
      ORDER BY e.id`,
    [limit],
  );
  return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
}

export interface WebhookTarget {
  id: number;
  format: "json" | "slack";
}

/** Active hooks that asked for this event: the project's own and the farm-wide ones (or the one a test event names). */
export async function webhookTargetsFor(db: Queryable, ev: Pick<OutboxEvent, "kind" | "webhookId" | "project">): Promise<WebhookTarget[]> {
  if (ev.kind === "webhook.test") {
    const { rows } = await db.query<WebhookTarget>("SELECT id::int AS id, format FROM webhooks WHERE id = $1", [ev.webhookId]);
    return rows;
  }
  const { rows } = await db.query<WebhookTarget>(
    `SELECT id::int AS id, format FROM webhooks
      WHERE active AND $1 = ANY(events) AND (project_id IS NULL OR project_id = $2) ORDER BY id`,
    [ev.kind, ev.project?.id ?? null],
  );
  return rows;
}

export interface MailRecipient {
  userId: number;
  name: string;
  email: string;
  mode: "all" | "changes" | "releases";
}

/**
 * Subscribers of the event's project who have an address, are active, and may see the project
 * now (a private project's mail goes to its members and administrators only).
 */
export async function mailRecipientsFor(db: Queryable, projectId: number): Promise<MailRecipient[]> {
  const { rows } = await db.query<MailRecipient>(
    `SELECT u.id::int AS "userId", u.name, u.email, s.mode
       FROM subscriptions s
       JOIN users u ON u.id = s.user_id
       JOIN projects p ON p.id = s.project_id
      WHERE s.project_id = $1 AND u.active AND u.email IS NOT NULL
        AND (NOT p.private OR u.role = 'admin'
             OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = u.id))
      ORDER BY u.id`,
    [projectId],
  );
  return rows;
}

/** How the same project's previous finished build of the same architecture ended (for "changes" mail). */
export async function previousResult(db: Queryable, build: { id: number; architecture: string }, projectId: number): Promise<"SUCCEEDED" | "FAILED" | null> {
  const { rows } = await db.query<{ state: "SUCCEEDED" | "FAILED" }>(
    `SELECT state FROM builds
      WHERE project_id = $1 AND architecture = $2 AND id < $3 AND state IN ('SUCCEEDED', 'FAILED')
      ORDER BY id DESC LIMIT 1`,
    [projectId, build.architecture, build.id],
  );
  return rows[0]?.state ?? null;
}

export interface NewDelivery {
  eventId: number;
  channel: "webhook" | "mail";
  webhookId?: number;
  userId?: number;
  subject?: string;
  body: string;
}

export async function insertDeliveries(c: Queryable, list: NewDelivery[]): Promise<void> {
  if (list.length === 0) return;
  await c.query(
    `INSERT INTO notification_deliveries (event_id, channel, webhook_id, user_id, subject, body)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[])`,
    [
      list.map((d) => d.eventId),
      list.map((d) => d.channel),
      list.map((d) => d.webhookId ?? null),
      list.map((d) => d.userId ?? null),
      list.map((d) => d.subject ?? null),
      list.map((d) => d.body),
    ],
  );
}

export async function markEventsFannedOut(c: Queryable, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await c.query("UPDATE outbox_events SET fanned_out_at = now() WHERE id = ANY($1::bigint[]) AND fanned_out_at IS NULL", [ids]);
}

// --- deliveries ---------------------------------------------------------------------------

export interface DueDelivery {
  id: string;
  channel: "webhook" | "mail";
  event: string;
  subject: string | null;
  body: string;
  /** This attempt's number (1 = first). */
  attempt: number;
  createdAt: Date;
  webhook: { id: number; url: string; secret: string; format: "json" | "slack" } | null;
  email: string | null;
}

/**
 * Takes up to `limit` deliveries that are due, with a lease of `leaseSeconds` (a notifier that
 * dies mid-send leaves them to be taken again when it runs out), counting the attempt.
 */
export async function claimDueDeliveries(db: Queryable, limit: number, leaseSeconds: number): Promise<DueDelivery[]> {
  const { rows } = await db.query<DueDelivery>(
    `WITH due AS (
       UPDATE notification_deliveries d
          SET locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
         FROM (SELECT id FROM notification_deliveries
                WHERE state = 'pending' AND next_attempt_at <= now() AND (locked_until IS NULL OR locked_until < now())
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) pick
        WHERE d.id = pick.id
        RETURNING d.*)
     SELECT due.id::text AS id, due.channel, e.kind AS event, due.subject, due.body, due.attempts AS attempt,
            due.created_at AS "createdAt",
            CASE WHEN w.id IS NULL THEN NULL ELSE jsonb_build_object('id', w.id, 'url', w.url, 'secret', w.secret, 'format', w.format) END AS webhook,
            u.email
       FROM due
       JOIN outbox_events e ON e.id = due.event_id
       LEFT JOIN webhooks w ON w.id = due.webhook_id
       LEFT JOIN users u ON u.id = due.user_id`,
    [limit, leaseSeconds],
  );
  return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
}

export interface AttemptRecord {
  deliveryId: string;
  attempt: number;
  statusCode: number | null;
  durationMs: number;
  responseSnippet: string | null;
  error: string | null;
  /** delivered; retry at nextAttemptAt; failed for good. */
  outcome: "delivered" | "retry" | "failed";
  nextAttemptAt?: Date;
}

/**
 * Writes the attempt's log row and moves the delivery on, guarded by the attempt number the
 * claim gave (a notifier whose lease ran out and was overtaken changes nothing). Returns
 * whether it was this attempt's to record.
 */
export async function recordDeliveryAttempt(db: Queryable, r: AttemptRecord): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `WITH moved AS (
       UPDATE notification_deliveries
          SET state = CASE $3::text WHEN 'retry' THEN 'pending' ELSE $3::text END,
              next_attempt_at = coalesce($4, next_attempt_at), locked_until = NULL,
              last_error = $5, finished_at = CASE WHEN $3::text = 'retry' THEN NULL ELSE now() END
        WHERE id = $1::uuid AND attempts = $2 AND state = 'pending' AND locked_until IS NOT NULL
        RETURNING id),
     logged AS (
       INSERT INTO delivery_attempts (delivery_id, attempt, status_code, duration_ms, response_snippet, error)
       SELECT id, $2, $6, $7, $8, $5 FROM moved RETURNING 1)
     SELECT (SELECT count(*) FROM logged)::int AS n`,
    [r.deliveryId, r.attempt, r.outcome, r.nextAttemptAt ?? null, r.error, r.statusCode, Math.round(r.durationMs), r.responseSnippet],
  );
  return (rows[0]?.n ?? 0) > 0;
}

/** Sends a webhook's delivery again now, with the same id and body. False when unknown or being sent right now. */
export async function redeliver(db: Queryable, deliveryId: string, webhookId: number): Promise<boolean> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(deliveryId)) return false;
  const { rowCount } = await db.query(
    `UPDATE notification_deliveries
        SET state = 'pending', next_attempt_at = now(), finished_at = NULL, locked_until = NULL
      WHERE id = $1::uuid AND webhook_id = $2 AND (locked_until IS NULL OR locked_until < now())`,
    [deliveryId, webhookId],
  );
  if (rowCount) await notify(db, Channel.notifications, {});
  return (rowCount ?? 0) > 0;
}

/** A "webhook.test" event for one hook; the notifier sends it like any other. */
export async function queueTestEvent(db: Queryable, webhookId: number, projectId: number | null): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    "INSERT INTO outbox_events (kind, project_id, webhook_id) VALUES ('webhook.test', $2, $1) RETURNING id::int AS id",
    [webhookId, projectId],
  );
  await notify(db, Channel.notifications, {});
  return rows[0]!.id;
}

export interface DeliveryLogEntry {
  id: string;
  event: string;
  state: string;
  attempts: number;
  createdAt: Date;
  nextAttemptAt: Date | null;
  lastError: string | null;
  log: { attempt: number; at: Date; statusCode: number | null; durationMs: number; responseSnippet: string | null; error: string | null }[];
}

/** A hook's deliveries, newest first, each with its attempts. */
export async function listDeliveries(db: Queryable, webhookId: number, limit = 50): Promise<DeliveryLogEntry[]> {
  const { rows } = await db.query<DeliveryLogEntry>(
    `SELECT d.id::text AS id, e.kind AS event, d.state, d.attempts, d.created_at AS "createdAt",
            CASE WHEN d.state = 'pending' THEN d.next_attempt_at END AS "nextAttemptAt", d.last_error AS "lastError",
            coalesce((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'statusCode', a.status_code,
                        'durationMs', a.duration_ms, 'responseSnippet', a.response_snippet, 'error', a.error) ORDER BY a.attempt)
                        FROM delivery_attempts a WHERE a.delivery_id = d.id), '[]') AS log
       FROM notification_deliveries d JOIN outbox_events e ON e.id = d.event_id
      WHERE d.webhook_id = $1
      ORDER BY d.created_at DESC, d.id LIMIT $2`,
    [webhookId, Math.min(Math.max(1, limit), 200)],
  );
  return rows.map((r) => ({ ...r, log: r.log.map((a) => ({ ...a, at: new Date(a.at as unknown as string) })) }));
}

/** Outbox events by kind for a set of builds (tests and the chaos soak count them). */
export async function countBuildEvents(db: Queryable, buildIds: number[]): Promise<{ buildId: number; kind: string; n: number }[]> {
  const { rows } = await db.query<{ buildId: number; kind: string; n: number }>(
    `SELECT build_id::int AS "buildId", kind, count(*)::int AS n FROM outbox_events
      WHERE build_id = ANY($1::bigint[]) GROUP BY build_id, kind ORDER BY build_id, kind`,
    [buildIds],
  );
  return rows;
}

/** Drops delivered and failed deliveries (and events with none left) older than `days`. */
export async function pruneNotifications(db: Queryable, days: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM outbox_events e WHERE e.fanned_out_at < now() - make_interval(days => $1)
        AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')`,
    [days],
  );
  return rowCount ?? 0;
}
