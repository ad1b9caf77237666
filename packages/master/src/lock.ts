// One master per installation: a PostgreSQL advisory lock held on a dedicated connection for
// the master's whole life. If that connection dies the lock is gone (another master may take
// over), so the master must stop at once: onLost is called and the caller exits non-zero.
import pg from "pg";
import type { Logger } from "@lexbuilder/shared-models/logger";

/** Fixed key: "lexbuilder master". */
export const MASTER_LOCK_KEY = 4_217_002;

export class MasterLock {
  private client: pg.Client | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private released = false;
  private lostReported = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly onLost: (why: string) => void,
    private readonly pingMs = 2000,
  ) {}

  get held(): boolean {
    return this.client !== null && !this.released;
  }

  /** One attempt: true if this process now holds the lock. */
  async tryAcquire(): Promise<boolean> {
    const client = new pg.Client({
      connectionString: this.databaseUrl,
      application_name: "lexbuilder-master-lock",
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      connectionTimeoutMillis: 10_000,
    });
    client.on("error", () => {});
    await client.connect();
    let ok = false;
    try {
      const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [MASTER_LOCK_KEY]);
      ok = rows[0]!.ok;
    } finally {
      if (!ok) await client.end().catch(() => {});
    }
    if (!ok) return false;
    this.client = client;
    client.removeAllListeners("error");
    client.on("error", (err) => this.lost(`the database connection holding the master lock failed (${err.message})`));
    client.on("end", () => this.lost("the database connection holding the master lock closed"));
    // A silently dead connection is found by pinging it.
    this.pingTimer = setInterval(() => {
      client.query("SELECT 1").catch((err: Error) => this.lost(`the database connection holding the master lock stopped answering (${err.message})`));
    }, this.pingMs);
    this.pingTimer.unref();
    return true;
  }

  /** Waits (retrying every `everyMs`) until the lock is ours, or `shouldStop()` says to give up. */
  async acquireWaiting(everyMs: number, shouldStop: () => boolean): Promise<boolean> {
    let announced = false;
    while (!shouldStop()) {
      try {
        if (await this.tryAcquire()) return true;
        if (!announced) this.log.info("another master is active; standing by to take over when it stops");
        announced = true;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "cannot reach the database to take the master lock; retrying");
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    return false;
  }

  private lost(why: string): void {
    if (this.released || this.lostReported) return;
    this.lostReported = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.client = null;
    this.onLost(why);
  }

  async release(): Promise<void> {
    this.released = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const c = this.client;
    this.client = null;
    if (c) {
      // Ending the session releases its advisory lock; an unlock query first would only add a
      // round trip that can hang when the database is unreachable. Bounded, for a prompt stop.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([c.end().catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
      clearTimeout(timer);
    }
  }
}
