// The serial runner with passes the test finishes by hand: no sleeps, no timing.
import { describe, expect, it } from "vitest";
import { SerialRunner } from "../src/serial-runner.js";

/** A pass the test releases: each call records itself and waits for release(). */
function gatedPass() {
  const waiting: (() => void)[] = [];
  let started = 0;
  let active = 0;
  let maxActive = 0;
  const pass = () =>
    new Promise<void>((resolve) => {
      started++;
      active++;
      maxActive = Math.max(maxActive, active);
      waiting.push(() => {
        active--;
        resolve();
      });
    });
  return {
    pass,
    get started() {
      return started;
    },
    get maxActive() {
      return maxActive;
    },
    /** Finishes the pass in progress and lets the runner decide what comes next. */
    async release() {
      const next = waiting.shift();
      if (!next) throw new Error("no pass is running");
      next();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

describe("SerialRunner", () => {
  it("runs one pass for one request", async () => {
    const g = gatedPass();
    const r = new SerialRunner(g.pass, { onError: (e) => expect.fail(String(e)) });
    const done = r.run();
    expect(g.started).toBe(1);
    await g.release();
    await done;
    expect(g.started).toBe(1);
  });

  it("makes exactly one more pass for any number of requests during a pass, never two at once", async () => {
    const g = gatedPass();
    const r = new SerialRunner(g.pass, { onError: (e) => expect.fail(String(e)) });
    const first = r.run();
    const during = [r.run(), r.run(), r.run()];
    expect(g.started).toBe(1);
    await g.release();
    expect(g.started).toBe(2);
    await g.release();
    await Promise.all([first, ...during]);
    expect(g.started).toBe(2);
    expect(g.maxActive).toBe(1);
    // Idle again: the next request starts a pass of its own.
    const later = r.run();
    expect(g.started).toBe(3);
    await g.release();
    await later;
  });

  it("settles a request made during a pass only after the pass that follows it", async () => {
    const g = gatedPass();
    const r = new SerialRunner(g.pass, { onError: (e) => expect.fail(String(e)) });
    void r.run();
    let settled = false;
    const during = r.run().then(() => (settled = true));
    await g.release();
    expect(g.started).toBe(2);
    expect(settled).toBe(false);
    await g.release();
    await during;
    expect(settled).toBe(true);
  });

  it("reports a failed pass and accepts requests after it", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const r = new SerialRunner(
      async () => {
        calls++;
        if (calls === 1) throw new Error("the database is gone");
      },
      { onError: (e) => errors.push(e) },
    );
    await r.run();
    expect(errors.map(String)).toEqual(["Error: the database is gone"]);
    await r.run();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it("starts nothing once stopping, and makes no further pass when stopping during one", async () => {
    const g = gatedPass();
    let stopping = false;
    const r = new SerialRunner(g.pass, { stopping: () => stopping, onError: (e) => expect.fail(String(e)) });
    const first = r.run();
    void r.run();
    stopping = true;
    await g.release();
    await first;
    expect(g.started).toBe(1);
    await r.run();
    expect(g.started).toBe(1);
  });
});
