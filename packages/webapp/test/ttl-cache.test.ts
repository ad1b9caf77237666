// TtlCache: the rules every webapp cache relies on.
import { describe, expect, it } from "vitest";
import { TtlCache } from "../src/cache/ttl-cache.js";

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe("TtlCache", () => {
  it("keeps a value for its lifetime only", async () => {
    let now = 1_000_000;
    const cache = new TtlCache<number>({ ttlMs: 40, maxEntries: 10, now: () => now });
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.get("k", load)).toBe(1);
    now += 39;
    expect(await cache.get("k", load)).toBe(1);
    now += 1;
    expect(await cache.get("k", load)).toBe(2);
  });

  it("shares one load between concurrent misses", async () => {
    const cache = new TtlCache<string>({ ttlMs: 10_000, maxEntries: 10 });
    const d = deferred<string>();
    let loads = 0;
    const a = cache.get("k", () => (loads++, d.promise));
    const b = cache.get("k", () => (loads++, d.promise));
    d.resolve("v");
    expect([await a, await b]).toEqual(["v", "v"]);
    expect(loads).toBe(1);
  });

  it("never stores a value whose load began before an invalidation", async () => {
    const cache = new TtlCache<string>({ ttlMs: 10_000, maxEntries: 10 });
    const old = deferred<string>();
    const first = cache.get("k", () => old.promise);
    cache.clear();
    // A request after the invalidation does not join the old load.
    const second = cache.get("k", async () => "new");
    old.resolve("old");
    expect(await first).toBe("old");
    expect(await second).toBe("new");
    expect(await cache.get("k", async () => "later")).toBe("new");
    // A tag invalidation stops loads of that tag only (log appends must not stall every page).
    const slow = deferred<string>();
    const other = deferred<string>();
    const tagged = cache.get("j", () => slow.promise, () => ({ tags: [7] }));
    const untagged = cache.get("i", () => other.promise, () => ({ tags: [8] }));
    cache.deleteTagged([7]);
    slow.resolve("stale");
    other.resolve("kept");
    await Promise.all([tagged, untagged]);
    expect(await cache.get("j", async () => "fresh")).toBe("fresh");
    expect(await cache.get("i", async () => "reloaded")).toBe("kept");
  });

  it("keeps nothing when disabled, nothing store() refuses, and no failed load", async () => {
    let on = false;
    const cache = new TtlCache<number | null>({ ttlMs: 10_000, maxEntries: 10 }, () => on);
    let n = 0;
    expect(await cache.get("k", async () => ++n)).toBe(1);
    expect(await cache.get("k", async () => ++n)).toBe(2);
    on = true;
    expect(await cache.get("k", async () => null, (v) => (v === null ? null : {}))).toBeNull();
    expect(await cache.get("k", async () => ++n)).toBe(3);
    await expect(cache.get("e", () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(await cache.get("e", async () => 9)).toBe(9);
  });

  it("drops tagged entries, matching entries, and the oldest beyond its bounds", async () => {
    const cache = new TtlCache<string>({ ttlMs: 10_000, maxEntries: 3, maxBytes: 100 });
    await cache.get("a", async () => "a", () => ({ tags: [1], bytes: 10 }));
    await cache.get("b", async () => "b", () => ({ tags: [2], bytes: 10 }));
    await cache.get("c", async () => "c", () => ({ bytes: 10 }));
    cache.deleteTagged([1]);
    expect(await cache.get("a", async () => "a2")).toBe("a2");
    cache.deleteWhere((v) => v === "b");
    expect(await cache.get("b", async () => "b2")).toBe("b2");
    await cache.get("d", async () => "d", () => ({ bytes: 10 }));
    expect(cache.size).toBe(3);
    await cache.get("big", async () => "x", () => ({ bytes: 95 }));
    expect(cache.totalBytes).toBeLessThanOrEqual(100);
    expect(await cache.get("big", async () => "y")).toBe("x");
    expect(cache.size).toBe(1);
  });
});
