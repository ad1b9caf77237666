// Records the notifications of one channel on its own connection. To show that no further
// notification came, a test does not sleep: settle() sends a marker on the same channel and
// waits for it; PostgreSQL delivers notifications in commit order, so everything committed
// before the marker has arrived by then.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { waitUntil } from "./wait.js";

export interface NotificationRecorder {
  /** The payloads received so far, JSON-parsed, in order; markers left out. */
  readonly got: unknown[];
  /** Resolves once every notification committed before the call has arrived. */
  settle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function recordNotifications(url: string, channel: string): Promise<NotificationRecorder> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const got: unknown[] = [];
  const markers = new Set<string>();
  client.on("notification", (m) => {
    const payload = m.payload ?? "";
    if (payload.startsWith("settle-")) markers.add(payload);
    else got.push(JSON.parse(payload));
  });
  await client.query(`LISTEN "${channel}"`);
  return {
    got,
    async settle(timeoutMs = 10_000) {
      const marker = `settle-${randomBytes(6).toString("hex")}`;
      await client.query("SELECT pg_notify($1, $2)", [channel, marker]);
      await waitUntil(`the marker notification on ${channel}`, () => markers.has(marker), { timeoutMs });
    },
    close: () => client.end(),
  };
}
