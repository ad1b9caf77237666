// Turns outbox events into deliveries, in the transaction that marks them fanned out: one per
// matching webhook, one per subscriber whose mode wants the event. A master killed halfway
// leaves the events unmarked, and the next pass does them again from the start.
import {
  getLogSize,
  insertDeliveries,
  listArtifacts,
  mailRecipientsFor,
  markEventsFannedOut,
  previousResult,
  readLog,
  takePendingEvents,
  webhookTargetsFor,
  withTransaction,
  type NewDelivery,
  type OutboxEvent,
  type Pool,
  type Queryable,
} from "@lexbuilder/shared-models/db";
import { resultMail, slackPayload, webhookPayload, type RenderContext } from "./render.js";
import { stripAnsi } from "./text.js";

/** Lines of a failed build's log quoted in its mail. */
const MAIL_LOG_LINES = 30;
const MAIL_LOG_BYTES = 16 * 1024;

export interface FanOutOptions {
  publicUrl: string;
  /** No SMTP configured: no mail deliveries are made. */
  mailEnabled: boolean;
  batch: number;
}

/** Fans out up to `batch` events; returns how many. */
export async function fanOutPending(pool: Pool, opts: FanOutOptions): Promise<number> {
  return withTransaction(pool, async (c) => {
    const events = await takePendingEvents(c, opts.batch);
    const deliveries: NewDelivery[] = [];
    for (const ev of events) deliveries.push(...(await plan(c, ev, opts)));
    await insertDeliveries(c, deliveries);
    await markEventsFannedOut(
      c,
      events.map((e) => e.id),
    );
    return events.length;
  });
}

async function plan(c: Queryable, ev: OutboxEvent, opts: FanOutOptions): Promise<NewDelivery[]> {
  const out: NewDelivery[] = [];
  const hooks = await webhookTargetsFor(c, ev);
  const recipients = opts.mailEnabled && ev.project && wantsMail(ev.kind) ? await mailRecipientsFor(c, ev.project.id) : [];
  if (hooks.length === 0 && recipients.length === 0) return out;
  const ctx: RenderContext = { publicUrl: opts.publicUrl, artifacts: [] };
  if (ev.build && (ev.kind === "build.succeeded" || ev.kind === "release.published")) ctx.artifacts = await listArtifacts(c, ev.build.id);
  for (const h of hooks) {
    const body = h.format === "slack" ? slackPayload(ev, ctx) : webhookPayload(ev, ctx);
    out.push({ eventId: ev.id, channel: "webhook", webhookId: h.id, body: JSON.stringify(body) });
  }
  if (recipients.length > 0 && ev.build) {
    const change = await isChange(c, ev);
    const wanted = recipients.filter((r) => (r.mode === "releases" ? ev.kind === "release.published" : ev.kind !== "release.published" && (r.mode === "all" || change)));
    if (wanted.length > 0) {
      if (ev.kind === "build.failed") ctx.logTail = await logTail(c, ev.build.id);
      const mail = resultMail(ev, ctx);
      for (const r of wanted) out.push({ eventId: ev.id, channel: "mail", userId: r.userId, subject: mail.subject, body: mail.text });
    }
  }
  return out;
}

function wantsMail(kind: string): boolean {
  return kind === "build.succeeded" || kind === "build.failed" || kind === "release.published";
}

/** Buildbot's "change": a failure after a success, or the first success after failures (or a first result). */
async function isChange(c: Queryable, ev: OutboxEvent): Promise<boolean> {
  if (!ev.build || !ev.project) return false;
  const before = await previousResult(c, ev.build, ev.project.id);
  const now = ev.kind === "build.succeeded" ? "SUCCEEDED" : ev.kind === "build.failed" ? "FAILED" : null;
  return now !== null && before !== now;
}

async function logTail(c: Queryable, buildId: number): Promise<string> {
  const size = Number((await getLogSize(c, buildId)) ?? 0);
  const from = Math.max(0, size - MAIL_LOG_BYTES);
  const text = stripAnsi((await readLog(c, buildId, from, MAIL_LOG_BYTES)).toString("utf8"));
  const lines = text.split("\n");
  if (from > 0) lines.shift(); // a line cut at its start
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines.slice(-MAIL_LOG_LINES).join("\n");
}
