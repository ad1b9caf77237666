// LISTEN on channels with a dedicated connection that comes back after PostgreSQL restarts.
// After a reconnect every handler is called with null: notifications may have been missed, so
// listeners re-read what they care about. A handler may be async: its rejection is logged, never
// left unhandled (that would end the daemon).
import pg from "pg";
import type { Logger } from "pino";
import type { Channel } from "./channels.js";

export type NotificationHandler = (payload: string | null) => void | Promise<void>;

export class Listener {
  private client: pg.Client | null = null;
  private handlers = new Map<string, Set<NotificationHandler>>();
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectedOnce = false;
  /** start() failed: the first connection made later must announce itself like a reconnect. */
  private startFailed = false;

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

  /**
   * Resolves once the first connection is listening. When it rejects, the listener still
   * retries in the background and calls every handler with null once connected; call stop()
   * to give up.
   */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: "lexbuilder-listen",
      // A peer that vanishes without closing the connection (host down, network cut) is
      // noticed through TCP keepalive instead of never.
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
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
      // Even when start() fails it keeps trying in the background (the webapp relies on it);
      // stop() ends that.
      this.scheduleRetry();
      if (!this.connectedOnce) {
        this.startFailed = true;
        throw err;
      }
      return;
    }
    if (this.stopped) {
      // stop() ran while this connection was being made.
      client.removeAllListeners("end");
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    if (this.connectedOnce || this.startFailed) {
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
        const result = handler(payload);
        if (result && typeof (result as Promise<void>).then === "function") {
          (result as Promise<void>).then(undefined, (err: unknown) => this.log?.error({ err, channel }, "notification handler failed"));
        }
      } catch (err) {
        this.log?.error({ err, channel }, "notification handler failed");
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
