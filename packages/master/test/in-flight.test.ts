// The set of build() calls in flight and its quiet(): what a watcher waits for before taking a
// running build's answer.
import { describe, expect, it } from "vitest";
import { InFlight } from "../src/in-flight.js";

const settled = async (p: Promise<void>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

describe("InFlight", () => {
  it("is quiet at once when nothing is in flight", async () => {
    expect(await settled(new InFlight().quiet(10_000))).toBe(true);
  });

  it("becomes quiet when the last call ends, not before", async () => {
    const f = new InFlight();
    f.add(1);
    f.add(2);
    const q = f.quiet(10_000);
    f.delete(1);
    expect(await settled(q)).toBe(false);
    expect(f.has(2)).toBe(true);
    f.delete(2);
    expect(await settled(q)).toBe(true);
    expect(f.size).toBe(0);
  });

  it("gives up waiting after the limit, and a late end wakes nobody twice", async () => {
    const f = new InFlight();
    f.add(7);
    const t0 = Date.now();
    await f.quiet(60);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    f.delete(7);
    // Deleting an id that is not there changes nothing.
    f.delete(7);
    expect(f.size).toBe(0);
  });
});
