// LISTEN on channels with a dedicated connection that comes back after PostgreSQL restarts.
// After a reconnect every handler is called with null: notifications may have been missed, so
// listeners re-read what they care about.
import pg from "pg";
import type { Logger } from "pino";
import type { Channel } from "./channels.js";

export type NotificationHandler = (payload: string | null) => void;

export class Listener {
  private client: pg.Client | null = null;
  private handlers = new Map<string, Set<NotificationHandler>>();
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectedOnce = false;

  constructor(
    private readonly connectionString: string,
    private readonly log?: Logger,
    private readonly retryMs = 1000,
  ) {}

  on(channel: Channel, handler: NotificationHandler): () => void {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      if (this.client) this.client.query(`LISTEN ${channel}`).catch(() => {});
    }
    set.add(handler);
    return () => set!.delete(handler);
  }

  /** Resolves once the first connection is listening. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.connectionString, application_name: "lexbuilder-listen" });
    client.on("notification", (msg) => this.dispatch(msg.channel, msg.payload ?? null));
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, null));
    try {
      await client.connect();
      for (const channel of this.handlers.keys()) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      client.removeAllListeners("end");
      client.end().catch(() => {});
      this.log?.warn({ err: (err as Error).message }, "cannot listen for notifications; retrying");
      this.scheduleRetry();
      if (!this.connectedOnce) throw err;
      return;
    }
    this.client = client;
    if (this.connectedOnce) {
      this.log?.info("listening for notifications again");
      for (const channel of this.handlers.keys()) this.dispatch(channel, null);
    }
    this.connectedOnce = true;
  }

  private lost(client: pg.Client, err: Error | null): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.stopped) return;
    this.log?.warn({ err: err?.message }, "notification connection lost; reconnecting");
    client.end().catch(() => {});
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().catch(() => {});
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private dispatch(channel: string, payload: string | null): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(payload);
      } catch (err) {
        this.log?.error({ err }, "notification handler failed");
      }
    }
  }

  get connected(): boolean {
    return this.client !== null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    if (client) await client.end().catch(() => {});
  }
}

/** Send a notification (outside or inside a transaction: it is delivered on commit). */
export async function notify(db: { query: (text: string, values?: unknown[]) => Promise<unknown> }, channel: Channel, payload: object): Promise<void> {
  await db.query("SELECT pg_notify($1, $2)", [channel, JSON.stringify(payload)]);
}
