// The notifier: fans out the outbox and sends what is due, on its own pool and timer so a slow
// receiver or mail server never holds up a dispatch. At most `concurrency` sends at once; each
// finished send asks for another pass, so a backlog drains without waiting for the poll.
import {
  claimDueDeliveries,
  createPool,
  recordDeliveryAttempt,
  setMasterFact,
  type DueDelivery,
  type Pool,
} from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import type { TargetPolicy } from "@lexbuilder/shared-models/webhook-target";
import { SerialRunner } from "../serial-runner.js";
import { nextAttemptAt } from "./backoff.js";
import { fanOutPending } from "./fanout.js";
import { Mailer } from "./mailer.js";
import { sendWebhook } from "./webhook-sender.js";

export interface NotifierConfig {
  databaseUrl: string;
  publicUrl: string;
  smtpUrl: string | null;
  mailFrom: string;
  policy: TargetPolicy;
  /** Per request; the 10 s. */
  timeoutMs: number;
  /** The first retry's delay; later ones double. */
  retryBaseMs: number;
  pollMs: number;
  concurrency: number;
  userAgent: string;
}

const FANOUT_BATCH = 100;

export class Notifier {
  private readonly pool: Pool;
  private readonly mailer: Mailer | null;
  private readonly runner: SerialRunner;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly config: NotifierConfig,
    private readonly log: Logger,
  ) {
    this.pool = createPool(config.databaseUrl, { max: 2 + Math.min(config.concurrency, 8), applicationName: "lexbuilder-master-notify" });
    this.mailer = config.smtpUrl ? new Mailer(config.smtpUrl, config.mailFrom, config.timeoutMs) : null;
    this.runner = new SerialRunner(() => this.pass(), {
      stopping: () => this.stopped,
      onError: (err) => this.log.error({ err: (err as Error).message }, "notification pass failed; it runs again at the next poll"),
    });
  }

  start(): void {
    // The console says whether mail is sent; a failure here only leaves its note stale.
    void setMasterFact(this.pool, "mail", { enabled: this.mailer !== null, from: this.config.mailFrom }).catch((err) =>
      this.log.warn({ err: (err as Error).message }, "could not publish whether mail is configured"),
    );
    this.timer = setInterval(() => this.wake(), this.config.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Something may be waiting (a build changed state, a redelivery was asked for). */
  wake(): void {
    void this.runner.run();
  }

  private async pass(): Promise<void> {
    while (!this.stopped && (await fanOutPending(this.pool, { publicUrl: this.config.publicUrl, mailEnabled: this.mailer !== null, batch: FANOUT_BATCH })) === FANOUT_BATCH);
    const room = this.config.concurrency - this.sending.size;
    if (room <= 0 || this.stopped) return;
    // The lease outlives one request with room to record it; a master killed mid-send leaves
    // the delivery to be taken again once it expires.
    const leaseSeconds = Math.ceil((this.config.timeoutMs * 1.5) / 1000) + 5;
    for (const d of await claimDueDeliveries(this.pool, room, leaseSeconds)) {
      const p = this.deliver(d).finally(() => {
        this.sending.delete(p);
        this.wake();
      });
      this.sending.add(p);
    }
  }

  private async deliver(d: DueDelivery): Promise<void> {
    const now = () => new Date();
    let outcome: { statusCode: number | null; durationMs: number; snippet: string | null; error: string | null; retry: boolean };
    if (d.channel === "webhook" && d.webhook) {
      const r = await sendWebhook(
        { url: d.webhook.url, secret: d.webhook.secret, event: d.event, deliveryId: d.id, body: d.body },
        { timeoutMs: this.config.timeoutMs, policy: this.config.policy, userAgent: this.config.userAgent },
      );
      outcome = { statusCode: r.statusCode, durationMs: r.durationMs, snippet: r.responseSnippet, error: r.error, retry: r.retry };
    } else if (d.channel === "mail" && this.mailer && d.email) {
      const r = await this.mailer.send(d.email, d.subject ?? "[lexbuilder]", d.body, d.id);
      outcome = { statusCode: null, durationMs: r.durationMs, snippet: r.response, error: r.error, retry: r.retry };
    } else {
      outcome = { statusCode: null, durationMs: 0, snippet: null, error: d.channel === "mail" ? "Mail is not configured, or the user has no e-mail address any more." : "The webhook is gone.", retry: false };
    }
    const next = outcome.error && outcome.retry ? nextAttemptAt(d.attempt, d.createdAt, now(), this.config.retryBaseMs) : null;
    const result = outcome.error === null ? "delivered" : next ? "retry" : "failed";
    const recorded = await recordDeliveryAttempt(this.pool, {
      deliveryId: d.id,
      attempt: d.attempt,
      statusCode: outcome.statusCode,
      durationMs: outcome.durationMs,
      responseSnippet: outcome.snippet,
      error: outcome.error,
      outcome: result,
      nextAttemptAt: next ?? undefined,
    }).catch((err) => {
      this.log.error({ delivery: d.id, err: (err as Error).message }, "could not record a delivery attempt; it is sent again when its lease ends");
      return false;
    });
    const fields = { delivery: d.id, channel: d.channel, event: d.event, attempt: d.attempt, status: outcome.statusCode, ms: Math.round(outcome.durationMs) };
    if (result === "delivered") this.log.info(fields, "notification delivered");
    else if (result === "retry") this.log.warn({ ...fields, error: outcome.error, next }, "notification failed; it is tried again");
    else this.log.error({ ...fields, error: outcome.error }, "notification failed for good");
    if (!recorded) this.log.debug(fields, "the attempt was not this notifier's to record");
  }

  async stop(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.race([Promise.allSettled([...this.sending]), new Promise((r) => setTimeout(r, graceMs))]);
    this.mailer?.close();
    await Promise.race([this.pool.end(), new Promise((r) => setTimeout(r, 500))]);
  }
}
