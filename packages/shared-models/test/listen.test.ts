// The LISTEN/NOTIFY listener against a real PostgreSQL: notifications arrive; when the
// server kills the listening connection it comes back, tells every handler "null" (you may
// have missed something), and later notifications arrive again.
import net from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Channel, Listener, notify } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";

let db: TestDatabase;
const listeners: Listener[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  for (const l of listeners) await l.stop();
  await db?.drop();
});

function track(l: Listener): Listener {
  listeners.push(l);
  return l;
}

/** Resolves with the next payload a handler receives (or fails after `ms`). */
function collector() {
  const seen: Array<string | null> = [];
  const waiters: Array<() => void> = [];
  const handler = (payload: string | null) => {
    seen.push(payload);
    waiters.splice(0).forEach((w) => w());
  };
  const until = async (pred: (seen: Array<string | null>) => boolean, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!pred(seen)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`condition not met within ${ms} ms; seen ${JSON.stringify(seen)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  return { seen, handler, until };
}

async function listenerPids(): Promise<number[]> {
  const { rows } = await db.pool.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'lexbuilder-listen' AND datname = current_database() ORDER BY pid",
  );
  return rows.map((r) => r.pid);
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function memoryLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { log: pino({ level: "debug" }, stream), lines };
}

describe("Listener", () => {
  it("delivers notifications to the handlers of their channel only", async () => {
    const builds = collector();
    const log = collector();
    const l = track(new Listener(db.url, undefined, 100));
    l.on(Channel.builds, builds.handler);
    l.on(Channel.log, log.handler);
    await l.start();
    expect(l.connected).toBe(true);
    await notify(db.pool, Channel.builds, { id: 1, state: "QUEUED" });
    await builds.until((s) => s.length === 1);
    expect(JSON.parse(builds.seen[0]!)).toEqual({ id: 1, state: "QUEUED" });
    // A notification sent inside a transaction arrives on commit, not before: one sent
    // outside it later arrives first.
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      await notify(client, Channel.log, { id: 1, size: 10 });
      await notify(db.pool, Channel.log, { id: 2, size: 20 });
      await log.until((s) => s.length === 1);
      expect(log.seen).toEqual(['{"id":2,"size":20}']);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    await log.until((s) => s.length === 2);
    expect(log.seen[1]).toBe('{"id":1,"size":10}');
    expect(builds.seen).toHaveLength(1);
    await l.stop();
  });

  it("reconnects after pg_terminate_backend, tells handlers null, then delivers again", async () => {
    const c = collector();
    const { log, lines } = memoryLogger();
    const l = track(new Listener(db.url, log, 100));
    l.on(Channel.builds, c.handler);
    await l.start();
    const [before] = await waitFor(listenerPids, (p) => p.length === 1);

    const { rows } = await db.pool.query<{ ok: boolean }>("SELECT pg_terminate_backend($1) AS ok", [before]);
    expect(rows[0]!.ok).toBe(true);
    await c.until((s) => s.includes(null));
    expect(c.seen).toEqual([null]);
    const after = await waitFor(listenerPids, (p) => p.length === 1 && p[0] !== before);
    expect(after[0]).not.toBe(before);
    expect(l.connected).toBe(true);

    await notify(db.pool, Channel.builds, { id: 2 });
    await c.until((s) => s.length === 2);
    expect(c.seen).toEqual([null, '{"id":2}']);
    expect(lines.some((x) => x.msg === "notification connection lost; reconnecting")).toBe(true);
    expect(lines.some((x) => x.msg === "listening for notifications again")).toBe(true);

    // And a second time: the reconnected connection is watched like the first.
    await db.pool.query("SELECT pg_terminate_backend($1)", [after[0]]);
    await c.until((s) => s.filter((p) => p === null).length === 2);
    await waitFor(listenerPids, (p) => p.length === 1 && p[0] !== after[0]);
    await notify(db.pool, Channel.builds, { id: 3 });
    await c.until((s) => s.includes('{"id":3}'));
    await l.stop();
    await waitFor(listenerPids, (p) => p.length === 0);
  });

  it("logs a failing async handler instead of leaving its rejection unhandled", async () => {
    const { log, lines } = memoryLogger();
    const good = collector();
    const l = track(new Listener(db.url, log, 100));
    l.on(Channel.projects, async () => {
      throw new Error("handler exploded");
    });
    l.on(Channel.projects, () => {
      throw new Error("sync handler exploded");
    });
    l.on(Channel.projects, good.handler);
    await l.start();
    await notify(db.pool, Channel.projects, { id: 9 });
    await good.until((s) => s.length === 1);
    await waitFor(async () => lines.filter((x) => x.msg === "notification handler failed").length, (n) => n === 2);
    const errs = lines.filter((x) => x.msg === "notification handler failed").map((x) => (x.err as { message: string }).message);
    expect(errs.sort()).toEqual(["handler exploded", "sync handler exploded"]);
    await l.stop();
  });

  it("when start() fails it keeps trying, and announces the late connection with null", async () => {
    const target = new URL(db.url);
    // A port with nothing on it yet; later a TCP relay to the real server appears there.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const viaRelay = new URL(db.url);
    viaRelay.hostname = "127.0.0.1";
    viaRelay.port = String(port);

    const c = collector();
    const l = track(new Listener(viaRelay.toString(), undefined, 100));
    l.on(Channel.builders, c.handler);
    await expect(l.start()).rejects.toThrow(/ECONNREFUSED/);
    expect(l.connected).toBe(false);

    const sockets = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on("error", () => outbound.destroy());
      outbound.on("error", () => inbound.destroy());
    });
    await new Promise<void>((r) => relay.listen(port, "127.0.0.1", r));
    try {
      await c.until((s) => s.includes(null));
      expect(l.connected).toBe(true);
      await notify(db.pool, Channel.builders, { id: 4 });
      await c.until((s) => s.includes('{"id":4}'));
    } finally {
      await l.stop();
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(r));
    }
  });

  it("stop() during the first connection leaves no connection behind", async () => {
    const l = track(new Listener(db.url, undefined, 100));
    l.on(Channel.builds, () => {});
    const starting = l.start();
    await l.stop();
    await starting;
    expect(l.connected).toBe(false);
    // start() has returned, so the connection it was making is closed; its backend may take a
    // moment to leave pg_stat_activity.
    await waitFor(listenerPids, (p) => p.length === 0);
  });

  it("does not come back after stop()", async () => {
    // The witness: a second listener with the same retry delay, cut off after the first one
    // stopped. Once it is back, a retry of the stopped one would have run too.
    const w = collector();
    const witness = track(new Listener(db.url, undefined, 50));
    witness.on(Channel.builds, w.handler);
    await witness.start();
    const [witnessPid] = await waitFor(listenerPids, (p) => p.length === 1);
    const c = collector();
    const l = track(new Listener(db.url, undefined, 50));
    l.on(Channel.builds, c.handler);
    await l.start();
    await l.stop();
    await db.pool.query("SELECT pg_terminate_backend($1)", [witnessPid]);
    await w.until((s) => s.includes(null));
    await notify(db.pool, Channel.builds, { id: 5 });
    await w.until((s) => s.includes('{"id":5}'));
    expect(c.seen).toEqual([]);
    const [pid] = await waitFor(listenerPids, (p) => p.length === 1);
    expect(pid).not.toBe(witnessPid);
    await witness.stop();
  });
});
