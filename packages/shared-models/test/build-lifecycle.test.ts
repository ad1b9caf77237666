// The master's lifecycle SQL against a real PostgreSQL: claiming (order, architecture, one
// claimer per build under concurrency), give-back with the re-queue limit, builder failure
// counting, success and cancel releasing the builder.
import { describe, expect, it } from "vitest";
import {
  claimQueuedBuilds,
  countBuilderFailure,
  failBuild,
  finishCancel,
  giveBackBuild,
  markBuildStarted,
  markCollecting,
  markSucceeded,
  requestBuild,
  appendLog,
  withTransaction,
  cancelBuild,
} from "@lexbuilder/shared-models/db";
import { useDispatchDatabase } from "./dispatch-fixture.js";

const fixture = useDispatchDatabase();
const { builder, project } = fixture;

/** The dispatcher's claim for one builder: its build, or null. */
async function claimFor(builderId: number) {
  return (await claimQueuedBuilds(fixture.db.pool, [builderId]))[0] ?? null;
}

async function state(id: number) {
  const { rows } = await fixture.db.pool.query("SELECT state, attempt, cookie, builder_id, requeue_count, failure_kind, log_size FROM builds WHERE id = $1", [id]);
  return rows[0];
}

async function holder(builderId: number): Promise<number | null> {
  const { rows } = await fixture.db.pool.query("SELECT current_build_id FROM builders WHERE id = $1", [builderId]);
  return rows[0].current_build_id;
}

describe("claiming for one builder", () => {
  it("takes the highest priority first, then the oldest, and records DISPATCHING with a cookie before any RPC", async () => {
    const b = await builder(["amd64"]);
    const low = await requestBuild(fixture.db.pool, { projectId: await project("amd64", 0), reason: "manual" });
    const high = await requestBuild(fixture.db.pool, { projectId: await project("amd64", 10), reason: "manual" });
    const low2 = await requestBuild(fixture.db.pool, { projectId: await project("amd64", 0), reason: "manual" });
    const c1 = await claimFor(b);
    expect(c1).toMatchObject({ id: high.id, cookie: `${high.id}-1`, attempt: 1, builderId: b });
    expect(await state(high.id)).toMatchObject({ state: "DISPATCHING", cookie: `${high.id}-1`, builder_id: b });
    expect(await holder(b)).toBe(high.id);
    // The builder is busy now: nothing more for it.
    expect(await claimFor(b)).toBeNull();
    await fixture.db.pool.query("UPDATE builders SET current_build_id = NULL WHERE id = $1", [b]);
    expect((await claimFor(b))?.id).toBe(low.id);
    await fixture.db.pool.query("UPDATE builders SET current_build_id = NULL WHERE id = $1", [b]);
    expect((await claimFor(b))?.id).toBe(low2.id);
  });

  it("matches architectures and skips builders that are not ready", async () => {
    const arm = await builder(["arm64"]);
    const notReady = await builder(["amd64"], false);
    await requestBuild(fixture.db.pool, { projectId: await project("amd64"), reason: "manual" });
    expect(await claimFor(arm)).toBeNull();
    expect(await claimFor(notReady)).toBeNull();
  });

  it("gives each build to exactly one of many concurrent claimers", async () => {
    const builders = await Promise.all(Array.from({ length: 8 }, () => builder(["amd64"])));
    const builds = await Promise.all(Array.from({ length: 5 }, async () => requestBuild(fixture.db.pool, { projectId: await project(), reason: "manual" })));
    const claims = await Promise.all(builders.map((id) => claimFor(id)));
    const got = claims.filter((c) => c !== null).map((c) => c!.id);
    expect(got.sort()).toEqual(builds.map((b) => b.id).sort());
    expect(new Set(claims.filter((c) => c).map((c) => c!.builderId)).size).toBe(5);
  });
});

describe("giving back, failing, finishing", () => {
  it("re-queues counted failures up to the limit, then fails the build with kind builder", async () => {
    const b = await builder(["amd64"]);
    const req = await requestBuild(fixture.db.pool, { projectId: await project(), reason: "manual" });
    for (let i = 1; i <= 3; i++) {
      const c = (await claimFor(b))!;
      expect(c.cookie).toBe(`${req.id}-${i}`);
      await markBuildStarted(fixture.db.pool, c.id, c.cookie);
      await appendLog(fixture.db.pool, c.id, 0, Buffer.from("attempt log\n"));
      expect(await giveBackBuild(fixture.db.pool, c.id, c.cookie, { counted: true, message: "lost", maxRequeues: 2 })).toBe(i <= 2 ? "QUEUED" : "FAILED");
      expect(await holder(b)).toBeNull();
    }
    expect(await state(req.id)).toMatchObject({ state: "FAILED", failure_kind: "builder", requeue_count: 2 });
  });

  it("does not count an uncounted give-back, resets the log, and ignores a stale cookie", async () => {
    const b = await builder(["amd64"]);
    const req = await requestBuild(fixture.db.pool, { projectId: await project(), reason: "manual" });
    const c = (await claimFor(b))!;
    await appendLog(fixture.db.pool, c.id, 0, Buffer.from("some log\n"));
    expect(await giveBackBuild(fixture.db.pool, c.id, "999-9", { counted: false, message: "x", maxRequeues: 3 })).toBeNull();
    expect(await giveBackBuild(fixture.db.pool, c.id, c.cookie, { counted: false, message: "x", maxRequeues: 3 })).toBe("QUEUED");
    expect(await state(req.id)).toMatchObject({ state: "QUEUED", requeue_count: 0, cookie: null, builder_id: null, log_size: 0 });
  });

  it("succeeds only from COLLECTING with the right cookie, releasing the builder and clearing its failures", async () => {
    const b = await builder(["amd64"]);
    await fixture.db.pool.query("UPDATE builders SET failure_count = 3 WHERE id = $1", [b]);
    const req = await requestBuild(fixture.db.pool, { projectId: await project(), reason: "manual" });
    const c = (await claimFor(b))!;
    expect(await withTransaction(fixture.db.pool, (t) => markSucceeded(t, c.id, c.cookie, "x/1"))).toBe(false);
    expect(await markBuildStarted(fixture.db.pool, c.id, c.cookie)).toBe(true);
    expect(await markCollecting(fixture.db.pool, c.id, "wrong-1", {})).toBe(false);
    expect(await markCollecting(fixture.db.pool, c.id, c.cookie, { configRevision: "abc" })).toBe(true);
    expect(await withTransaction(fixture.db.pool, (t) => markSucceeded(t, c.id, c.cookie, "x/1"))).toBe(true);
    expect(await state(req.id)).toMatchObject({ state: "SUCCEEDED" });
    expect(await holder(b)).toBeNull();
    const { rows } = await fixture.db.pool.query("SELECT failure_count FROM builders WHERE id = $1", [b]);
    expect(rows[0].failure_count).toBe(0);
    // A finished build cannot be failed afterwards.
    expect(await failBuild(fixture.db.pool, c.id, c.cookie, "build", "late")).toBe(false);
  });

  it("ends a cancel and releases the builder", async () => {
    const b = await builder(["amd64"]);
    const req = await requestBuild(fixture.db.pool, { projectId: await project(), reason: "manual" });
    const c = (await claimFor(b))!;
    await markBuildStarted(fixture.db.pool, c.id, c.cookie);
    expect(await cancelBuild(fixture.db.pool, req.id)).toEqual({ state: "CANCELLING" });
    expect(await finishCancel(fixture.db.pool, req.id)).toBe(true);
    expect(await finishCancel(fixture.db.pool, req.id)).toBe(false);
    expect(await state(req.id)).toMatchObject({ state: "CANCELLED" });
    expect(await holder(b)).toBeNull();
  });
});

describe("countBuilderFailure", () => {
  it("disables the builder at the limit, once, with the reason stored", async () => {
    const b = await builder(["amd64"]);
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await countBuilderFailure(fixture.db.pool, b, `failure ${i + 1}`, 5));
    expect(results.map((r) => r.disabled)).toEqual([false, false, false, false, true, false]);
    const { rows } = await fixture.db.pool.query("SELECT enabled, disabled_reason, failure_count FROM builders WHERE id = $1", [b]);
    expect(rows[0].enabled).toBe(false);
    expect(rows[0].failure_count).toBe(6);
    expect(rows[0].disabled_reason).toBe("Disabled by the master after 5 failures; the last one: failure 5");
  });
});
