// The outbox against a real PostgreSQL: the triggers write exactly one event per state a person
// cares about, in the transaction of the change (a rolled-back change leaves none, a claim
// writes none); deliveries are claimed with a lease, recorded once per attempt, redelivered
// with the same id; recipients of a private project's mail are the ones who may see it.
import { describe, expect, it } from "vitest";
import {
  claimDueDeliveries,
  claimQueuedBuilds,
  countBuildEvents,
  createUser,
  createWebhook,
  disableBuilder,
  insertDeliveries,
  listDeliveries,
  mailRecipientsFor,
  markEventsFannedOut,
  queueTestEvent,
  recordDeliveryAttempt,
  redeliver,
  requestBuild,
  setProjectMembers,
  setSubscription,
  setUserEmail,
  takePendingEvents,
  updateProject,
  webhookTargetsFor,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { driveBuild } from "../testing/drive.js";
import { useDispatchDatabase } from "./dispatch-fixture.js";

const fixture = useDispatchDatabase();

async function kinds(buildId: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of await countBuildEvents(fixture.db.pool, [buildId])) out[r.kind] = r.n;
  return out;
}

describe("outbox events from build state changes", () => {
  it("writes queued, started and succeeded once each; the claim and collection write none", async () => {
    const pool = fixture.db.pool;
    const project = await fixture.project();
    const b = await requestBuild(pool, { projectId: project, reason: "manual" });
    expect(await kinds(b.id)).toEqual({ "build.queued": 1 });
    await claimQueuedBuilds(pool, [await fixture.builder(["amd64"])]);
    expect(await kinds(b.id)).toEqual({ "build.queued": 1 });
    await driveBuild(pool, b.id, "COLLECTING");
    expect(await kinds(b.id)).toEqual({ "build.queued": 1, "build.started": 1 });
    await driveBuild(pool, b.id, "SUCCEEDED");
    expect(await kinds(b.id)).toEqual({ "build.queued": 1, "build.started": 1, "build.succeeded": 1 });
  });

  it("writes failed and cancelled, a release for a milestone success, and nothing for a rolled-back change", async () => {
    const pool = fixture.db.pool;
    const project = await fixture.project();
    const failed = await requestBuild(pool, { projectId: project, reason: "manual", configRef: "a" });
    await driveBuild(pool, failed.id, "FAILED");
    expect(await kinds(failed.id)).toEqual({ "build.queued": 1, "build.failed": 1 });

    const cancelled = await requestBuild(pool, { projectId: project, reason: "manual", configRef: "b" });
    await driveBuild(pool, cancelled.id, "CANCELLED");
    expect(await kinds(cancelled.id)).toEqual({ "build.queued": 1, "build.cancelled": 1 });

    const release = await requestBuild(pool, { projectId: project, reason: "milestone", milestone: "1.0", configRef: "c" });
    await driveBuild(pool, release.id, "SUCCEEDED");
    expect(await kinds(release.id)).toEqual({ "build.queued": 1, "build.started": 1, "build.succeeded": 1, "release.published": 1 });

    await expect(
      withTransaction(pool, async (c) => {
        await requestBuild(c, { projectId: project, reason: "manual", configRef: "d" });
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    const { rows } = await pool.query("SELECT count(*)::int AS n FROM outbox_events e JOIN builds b ON b.id = e.build_id WHERE b.config_ref = 'd'");
    expect(rows[0].n).toBe(0);
  });

  it("writes builder.disabled when a builder is switched off, once", async () => {
    const pool = fixture.db.pool;
    const id = await fixture.builder(["amd64"]);
    await disableBuilder(pool, id, "disk failing");
    await disableBuilder(pool, id, "again");
    const { rows } = await pool.query("SELECT kind, facts FROM outbox_events WHERE builder_id = $1", [id]);
    expect(rows).toEqual([{ kind: "builder.disabled", facts: expect.objectContaining({ reason: "disk failing" }) }]);
  });
});

describe("targets and deliveries", () => {
  it("matches hooks by event and project, farm-wide hooks too, and leases, records and redelivers", async () => {
    const pool = fixture.db.pool;
    const project = await fixture.project();
    const other = await fixture.project();
    const mine = await createWebhook(pool, { projectId: project, url: "http://127.0.0.1:9/h", secret: "s".repeat(16), events: ["build.failed"], format: "json", createdBy: null });
    await createWebhook(pool, { projectId: other, url: "http://127.0.0.1:9/o", secret: "s".repeat(16), events: ["build.failed"], format: "json", createdBy: null });
    const farm = await createWebhook(pool, { projectId: null, url: "http://127.0.0.1:9/f", secret: "s".repeat(16), events: ["build.failed", "builder.disabled"], format: "slack", createdBy: null });
    const b = await requestBuild(pool, { projectId: project, reason: "manual" });
    await driveBuild(pool, b.id, "FAILED");

    const events = await withTransaction(pool, (c) => takePendingEvents(c, 100));
    const failed = events.find((e) => e.kind === "build.failed" && e.build?.id === b.id)!;
    expect(failed.project?.id).toBe(project);
    expect(failed.build?.failureKind).toBe("build");
    expect((await webhookTargetsFor(pool, failed)).map((t) => t.id)).toEqual([mine, farm]);

    await insertDeliveries(pool, [{ eventId: failed.id, channel: "webhook", webhookId: mine, body: "{}" }]);
    await markEventsFannedOut(pool, events.map((e) => e.id));
    expect(await withTransaction(pool, (c) => takePendingEvents(c, 100))).toEqual([]);

    const [d] = await claimDueDeliveries(pool, 10, 60);
    expect(d).toMatchObject({ channel: "webhook", event: "build.failed", attempt: 1, webhook: { id: mine, secret: "s".repeat(16) } });
    // Leased: a second notifier gets nothing, and cannot redeliver it mid-send.
    expect(await claimDueDeliveries(pool, 10, 60)).toEqual([]);
    expect(await redeliver(pool, d!.id, mine)).toBe(false);
    const retryAt = new Date(Date.now() - 1000);
    expect(await recordDeliveryAttempt(pool, { deliveryId: d!.id, attempt: 1, statusCode: 503, durationMs: 12, responseSnippet: "busy", error: "The receiver answered 503.", outcome: "retry", nextAttemptAt: retryAt })).toBe(true);
    // A stale recorder of the same attempt changes nothing.
    expect(await recordDeliveryAttempt(pool, { deliveryId: d!.id, attempt: 1, statusCode: 200, durationMs: 1, responseSnippet: "", error: null, outcome: "delivered" })).toBe(false);
    const [again] = await claimDueDeliveries(pool, 10, 60);
    expect(again).toMatchObject({ id: d!.id, attempt: 2 });
    expect(await recordDeliveryAttempt(pool, { deliveryId: d!.id, attempt: 2, statusCode: 200, durationMs: 5, responseSnippet: "ok", error: null, outcome: "delivered" })).toBe(true);

    const log = await listDeliveries(pool, mine);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ id: d!.id, event: "build.failed", state: "delivered", attempts: 2 });
    expect(log[0]!.log.map((a) => [a.attempt, a.statusCode, a.responseSnippet])).toEqual([
      [1, 503, "busy"],
      [2, 200, "ok"],
    ]);
    // Redelivery: the same id, pending again; not through another project's hook.
    expect(await redeliver(pool, d!.id, farm)).toBe(false);
    expect(await redeliver(pool, d!.id, mine)).toBe(true);
    const [re] = await claimDueDeliveries(pool, 10, 60);
    expect(re).toMatchObject({ id: d!.id, attempt: 3 });
  });

  it("sends a test event to the one hook it names", async () => {
    const pool = fixture.db.pool;
    const project = await fixture.project();
    const a = await createWebhook(pool, { projectId: project, url: "http://127.0.0.1:9/a", secret: "s".repeat(16), events: ["build.failed"], format: "json", createdBy: null });
    await createWebhook(pool, { projectId: project, url: "http://127.0.0.1:9/b", secret: "s".repeat(16), events: ["build.failed"], format: "json", createdBy: null });
    await queueTestEvent(pool, a, project);
    const events = await withTransaction(pool, (c) => takePendingEvents(c, 100));
    const test = events.find((e) => e.kind === "webhook.test")!;
    expect((await webhookTargetsFor(pool, test)).map((t) => t.id)).toEqual([a]);
  });

  it("mails a private project's subscribers only while they may see it", async () => {
    const pool = fixture.db.pool;
    const project = await fixture.project();
    await updateProject(pool, project, { private: true });
    const member = await createUser(pool, { name: `m${Date.now()}`, role: "viewer", passwordHash: "x" });
    const outsider = await createUser(pool, { name: `o${Date.now()}`, role: "builder", passwordHash: "x" });
    const admin = await createUser(pool, { name: `a${Date.now()}`, role: "admin", passwordHash: "x" });
    const noMail = await createUser(pool, { name: `n${Date.now()}`, role: "admin", passwordHash: "x" });
    for (const u of [member, outsider, admin]) await setUserEmail(pool, u.id, `${u.name}@example.org`);
    for (const u of [member, outsider, admin, noMail]) await setSubscription(pool, u.id, project, "all");
    await setProjectMembers(pool, project, [member.id]);
    expect((await mailRecipientsFor(pool, project)).map((r) => r.userId).sort()).toEqual([member.id, admin.id].sort());
    await setProjectMembers(pool, project, []);
    expect((await mailRecipientsFor(pool, project)).map((r) => r.userId)).toEqual([admin.id]);
    await setSubscription(pool, admin.id, project, "none");
    expect(await mailRecipientsFor(pool, project)).toEqual([]);
  });
});
