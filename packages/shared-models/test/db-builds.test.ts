import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, recordNotifications, type TestDatabase } from "../testing/index.js";
import { createProject, SYSTEM_VIEWER, type Project } from "../src/db/projects.js";
import {
  BuildStateError,
  DuplicateBuildError,
  DuplicateScheduledBuildError,
  getBuild,
  getBuildRow,
  IdempotencyKeyUsedError,
  listBuilds,
  ProjectInactiveError,
  requestBuild,
  retryBuild,
  type Build,
} from "../src/db/builds.js";
import { cancelBuild } from "../src/db/build-transitions.js";
import { driveBuild } from "../testing/drive.js";
import { deactivateProject } from "../src/db/projects.js";
import { createUser } from "../src/db/users.js";
import { addBuilder, updateBuilderInfo } from "../src/db/builders.js";
import { withTransaction } from "../src/db/pool.js";
import { Channel } from "../src/db/channels.js";
import { BUILD_STATES, type BuildState } from "../src/states.js";
import { addArtifact, listArtifacts } from "../src/db/artifacts.js";
import { appendLog } from "../src/db/logs.js";
import { toApiBuild, toApiBuildListItem, toApiProject } from "../src/api-shapes.js";
import { listProjects } from "../src/db/projects.js";

let db: TestDatabase;
let n = 0;
async function project(extra: Partial<Parameters<typeof createProject>[1]> = {}): Promise<Project> {
  n++;
  return createProject(db.pool, { name: `p${n}`, configUrl: "https://example.org/c.git", architecture: "amd64", ...extra });
}

/** A fresh build walked through the writer functions to `state`; each one first in the queue. */
let priority = 1000;
async function buildIn(state: BuildState, p?: Project): Promise<Build> {
  const proj = p ?? (await project());
  const b = await requestBuild(db.pool, { projectId: proj.id, reason: "manual", priority: ++priority });
  await driveBuild(db.pool, b.id, state);
  return (await getBuildRow(db.pool, b.id))!;
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe("requestBuild", () => {
  it("takes ref and priority from the project, and notifies", async () => {
    const p = await project({ configRef: "release", priority: 7 });
    const recorder = await recordNotifications(db.url, Channel.builds);
    const b = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    expect(b).toMatchObject({ projectId: p.id, state: "QUEUED", configRef: "release", priority: 7, architecture: "amd64", attempt: 0 });
    expect(b.requestedAt).toBeInstanceOf(Date);
    await recorder.settle();
    await recorder.close();
    expect(recorder.got).toEqual([{ id: b.id, state: "QUEUED" }]);
    const other = await requestBuild(db.pool, { projectId: p.id, reason: "api", configRef: "v1.0", priority: -5 });
    expect(other).toMatchObject({ configRef: "v1.0", priority: -5 });
  });

  it("refuses a second identical queued request, and allows it once the first left QUEUED", async () => {
    const p = await project();
    const first = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "api" })).rejects.toThrow(
      new DuplicateBuildError(p.name, first.id).message,
    );
    expect(new DuplicateBuildError(p.name, first.id).message).toBe(`An identical build of ${p.name} is already queued (#${first.id}).`);
    // Other ref or a milestone is not identical.
    await requestBuild(db.pool, { projectId: p.id, reason: "manual", configRef: "other" });
    const m = await requestBuild(db.pool, { projectId: p.id, reason: "milestone", milestone: "1.0" });
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "milestone", milestone: "1.0" })).rejects.toBeInstanceOf(DuplicateBuildError);
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "milestone", milestone: "1.0" })).rejects.toMatchObject({ existingBuildId: m.id });
    expect(await cancelBuild(db.pool, first.id)).toEqual({ state: "CANCELLED" });
    const again = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    expect(again.id).toBeGreaterThan(first.id);
  });

  it("refuses without aborting the caller's transaction", async () => {
    const p = await project();
    await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    const result = await withTransaction(db.pool, async (c) => {
      await expect(requestBuild(c, { projectId: p.id, reason: "manual" })).rejects.toBeInstanceOf(DuplicateBuildError);
      const { rows } = await c.query("SELECT 1 AS ok");
      return rows[0].ok;
    });
    expect(result).toBe(1);
  });

  it("answers a repeated Idempotency-Key with the first build, per user, even after it left the queue", async () => {
    const p = await project();
    const alice = await createUser(db.pool, { name: `idem-a-${p.id}`, role: "builder", passwordHash: "scrypt$x" });
    const bob = await createUser(db.pool, { name: `idem-b-${p.id}`, role: "builder", passwordHash: "scrypt$x" });
    const first = await requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: alice.id, idempotencyKey: "k-1" });
    // Still queued: the key wins over the identical-build refusal, so the client learns its own build.
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: alice.id, idempotencyKey: "k-1" })).rejects.toMatchObject({
      existingBuildId: first.id,
    });
    expect(await cancelBuild(db.pool, first.id)).toEqual({ state: "CANCELLED" });
    // Out of the queue: without the key a repeat would queue a second build; with it, it does not.
    const err = await requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: alice.id, idempotencyKey: "k-1" }).catch((e) => e);
    expect(err).toBeInstanceOf(IdempotencyKeyUsedError);
    expect(err.existingBuildId).toBe(first.id);
    // Another user's key of the same text is another key.
    const bobs = await requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: bob.id, idempotencyKey: "k-1" });
    expect(bobs.id).not.toBe(first.id);
    // Twenty racing repeats of a new key: one build, nineteen answers naming it.
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: alice.id, idempotencyKey: "race", configRef: "race" })),
    );
    const made = results.filter((r) => r.status === "fulfilled");
    expect(made).toHaveLength(1);
    const madeId = (made[0] as PromiseFulfilledResult<Build>).value.id;
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ existingBuildId: madeId });
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM builds WHERE requested_by = $1 AND idempotency_key = 'race'", [alice.id]);
    expect(rows[0].n).toBe(1);
    // Bad keys and keys without a user are refused before anything is written.
    for (const bad of ["", "has space", "x".repeat(201), "caf\u00e9"]) {
      await expect(requestBuild(db.pool, { projectId: p.id, reason: "api", requestedBy: alice.id, idempotencyKey: bad, configRef: "bad" })).rejects.toThrow(/Idempotency-Key/);
    }
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "api", idempotencyKey: "k-2", configRef: "bad" })).rejects.toThrow(/requesting user/);
    const { rows: none } = await db.pool.query("SELECT count(*)::int AS n FROM builds WHERE project_id = $1 AND config_ref = 'bad'", [p.id]);
    expect(none[0].n).toBe(0);
  });

  it("makes a schedule slot idempotent", async () => {
    const p = await project();
    const slot = new Date("2026-01-02T03:00:00Z");
    const b = await requestBuild(db.pool, { projectId: p.id, reason: "daily", scheduledFor: slot });
    await cancelBuild(db.pool, b.id);
    const err = await requestBuild(db.pool, { projectId: p.id, reason: "daily", scheduledFor: slot }).catch((e) => e);
    expect(err).toBeInstanceOf(DuplicateScheduledBuildError);
    expect(err.existingBuildId).toBe(b.id);
    const next = await requestBuild(db.pool, { projectId: p.id, reason: "daily", scheduledFor: new Date("2026-01-03T03:00:00Z") });
    expect(next.scheduledFor).toEqual(new Date("2026-01-03T03:00:00Z"));
  });

  it("refuses a milestone build without a milestone name, with a sentence", async () => {
    const p = await project();
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "milestone" })).rejects.toThrow("A milestone build needs a milestone name.");
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "manual", milestone: "x".repeat(101) })).rejects.toThrow(/1 to 100 characters/);
    await expect(requestBuild(db.pool, { projectId: 999999, reason: "manual" })).rejects.toThrow("There is no project with id 999999.");
  });

  it("refuses a deactivated project", async () => {
    const p = await project();
    await deactivateProject(db.pool, p.id);
    await expect(requestBuild(db.pool, { projectId: p.id, reason: "manual" })).rejects.toBeInstanceOf(ProjectInactiveError);
  });

  it("lets exactly one of many concurrent identical requests through", async () => {
    const p = await project();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => requestBuild(db.pool, { projectId: p.id, reason: "api" })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(DuplicateBuildError);
  });
});

describe("cancelBuild", () => {
  it("cancels from each state as the rules say", async () => {
    const expected: Record<BuildState, BuildState | "error"> = {
      QUEUED: "CANCELLED",
      DISPATCHING: "CANCELLING",
      BUILDING: "CANCELLING",
      COLLECTING: "CANCELLING",
      CANCELLING: "CANCELLING",
      SUCCEEDED: "error",
      FAILED: "error",
      CANCELLED: "error",
    };
    for (const state of BUILD_STATES) {
      const b = await buildIn(state);
      if (expected[state] === "error") {
        const err = await cancelBuild(db.pool, b.id).catch((e) => e);
        expect(err, state).toBeInstanceOf(BuildStateError);
        expect(err.message).toBe(`Build #${b.id} has already finished (${state}); there is nothing to cancel.`);
        expect((await getBuildRow(db.pool, b.id))!.state).toBe(state);
      } else {
        expect(await cancelBuild(db.pool, b.id), state).toEqual({ state: expected[state] });
        const after = (await getBuildRow(db.pool, b.id))!;
        expect(after.state).toBe(expected[state]);
        if (state === "QUEUED") expect(after.finishedAt).toBeInstanceOf(Date);
      }
    }
    await expect(cancelBuild(db.pool, 999999)).rejects.toThrow("There is no build #999999.");
  });
});

describe("retryBuild", () => {
  it("retries only failed or cancelled builds, as a new build that refers to the old", async () => {
    const user = await createUser(db.pool, { name: "retrier", role: "builder", passwordHash: "scrypt$x" });
    for (const state of BUILD_STATES) {
      const b = await buildIn(state);
      if (state === "FAILED" || state === "CANCELLED") {
        const r = await retryBuild(db.pool, b.id, user.id);
        expect(r).toMatchObject({ state: "QUEUED", reason: "retry", retryOf: b.id, projectId: b.projectId, configRef: b.configRef, requestedBy: user.id });
      } else {
        const err = await retryBuild(db.pool, b.id, user.id).catch((e) => e);
        expect(err, state).toBeInstanceOf(BuildStateError);
        expect(err.message).toMatch(state === "SUCCEEDED" ? /succeeded; request a new build/ : /only failed or cancelled builds can be retried/);
      }
    }
  });

  it("keeps the milestone and refuses a retry while an identical build is queued", async () => {
    const p = await project();
    const b = await requestBuild(db.pool, { projectId: p.id, reason: "milestone", milestone: "2.0" });
    await driveBuild(db.pool, b.id, "FAILED");
    const r = await retryBuild(db.pool, b.id, null);
    expect(r).toMatchObject({ milestone: "2.0", reason: "retry" });
    await expect(retryBuild(db.pool, b.id, null)).rejects.toBeInstanceOf(DuplicateBuildError);
  });
});

describe("reading builds", () => {
  it("getBuild joins names and counts; listBuilds filters, pages and hides private projects", async () => {
    const owner = await createUser(db.pool, { name: "owner", role: "builder", passwordHash: "scrypt$x" });
    const stranger = await createUser(db.pool, { name: "stranger", role: "viewer", passwordHash: "scrypt$x" });
    const pub = await project();
    const priv = await project({ private: true });
    await db.pool.query("INSERT INTO project_members (project_id, user_id) VALUES ($1, $2)", [priv.id, owner.id]);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await requestBuild(db.pool, { projectId: pub.id, reason: "manual", configRef: `r${i}`, requestedBy: owner.id });
      ids.push(b.id);
    }
    const hidden = await requestBuild(db.pool, { projectId: priv.id, reason: "manual" });
    const d = (await getBuild(db.pool, ids[0]!))!;
    expect(d).toMatchObject({ projectName: pub.name, requestedByName: "owner", builderName: null, artifactCount: 0, projectPrivate: false });
    expect(await getBuild(db.pool, hidden.id, { userId: stranger.id, role: "viewer" })).toBeNull();
    expect(await getBuild(db.pool, hidden.id, { userId: owner.id, role: "builder" })).not.toBeNull();

    const page1 = await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, projectId: pub.id, limit: 3 });
    expect(page1.map((b) => b.id)).toEqual([ids[4], ids[3], ids[2]]);
    const page2 = await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, projectId: pub.id, limit: 3, before: page1[2]!.id });
    expect(page2.map((b) => b.id)).toEqual([ids[1], ids[0]]);
    const asStranger = await listBuilds(db.pool, { viewer: { userId: stranger.id, role: "viewer" }, limit: 200 });
    expect(asStranger.some((b) => b.id === hidden.id)).toBe(false);
    expect(asStranger.some((b) => b.id === ids[0])).toBe(true);
    const anon = await listBuilds(db.pool, { viewer: { userId: null, role: null }, limit: 200 });
    expect(anon.some((b) => b.id === hidden.id)).toBe(false);
    const asOwner = await listBuilds(db.pool, { viewer: { userId: owner.id, role: "builder" }, state: "QUEUED", limit: 1000 });
    expect(asOwner.some((b) => b.id === hidden.id)).toBe(true);
    expect(asOwner.length).toBeLessThanOrEqual(200);
    const retries = await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, reason: "retry" });
    expect(retries.every((b) => b.reason === "retry")).toBe(true);
  });
});

describe("hostile ids and limits", () => {
  it("finds nothing for ids that are not ids, and clamps limits", async () => {
    for (const bad of [Number.NaN, -1, 0, 1.5, 2 ** 64, Number.POSITIVE_INFINITY]) {
      expect(await getBuild(db.pool, bad), String(bad)).toBeNull();
      expect(await getBuildRow(db.pool, bad)).toBeNull();
      await expect(cancelBuild(db.pool, bad)).rejects.toThrow(/There is no build/);
      await expect(retryBuild(db.pool, bad, null)).rejects.toThrow(/There is no build/);
      expect(await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, before: bad })).toEqual([]);
    }
    await buildIn("QUEUED");
    const all = await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, limit: Number.NaN });
    expect(all.length).toBeGreaterThan(0);
    expect(all.length).toBeLessThanOrEqual(50);
    expect(await listBuilds(db.pool, { viewer: SYSTEM_VIEWER, limit: -5 })).toHaveLength(1);
  });
});

describe("api shapes", () => {
  it("renders a build as GET /api/v1/builds/:id does", async () => {
    const user = await createUser(db.pool, { name: "shaper", role: "builder", passwordHash: "scrypt$x" });
    const builder = await addBuilder(db.pool, { name: "shape-builder", url: "http://127.0.0.1:2", token: "t" });
    const p = await project({ configRef: "stable" });
    const b = await requestBuild(db.pool, { projectId: p.id, reason: "milestone", milestone: "1.0", requestedBy: user.id, priority: ++priority });
    await updateBuilderInfo(db.pool, builder.id, { architectures: ["amd64"], info: {}, ready: true });
    await driveBuild(db.pool, b.id, "BUILDING", { builderId: builder.id });
    await appendLog(db.pool, b.id, 0, Buffer.from("RUN: lb build\n"));
    await driveBuild(db.pool, b.id, "COLLECTING", { configRevision: "0123abcd" });
    await addArtifact(db.pool, { buildId: b.id, name: "live-image-amd64.hybrid.iso", kind: "image", sha256: "c".repeat(64), size: 123, storedPath: "x/y.iso" });
    await driveBuild(db.pool, b.id, "SUCCEEDED");
    const detail = (await getBuild(db.pool, b.id))!;
    const arts = await listArtifacts(db.pool, b.id);
    const json = JSON.parse(JSON.stringify(toApiBuild(detail, arts)));
    expect(json).toMatchObject({
      id: b.id,
      project: p.name,
      state: "SUCCEEDED",
      failureKind: null,
      failureMessage: null,
      result: "OK",
      reason: "milestone",
      milestone: "1.0",
      requestedBy: "shaper",
      configRef: "stable",
      configRevision: "0123abcd",
      architecture: "amd64",
      builder: "shape-builder",
      attempt: 1,
      logSize: 14,
      retryOf: null,
      files: [{ id: arts[0]!.id, name: "live-image-amd64.hybrid.iso", kind: "image", size: 123, sha256: "c".repeat(64) }],
    });
    for (const k of ["requestedAt", "dispatchedAt", "startedAt", "finishedAt"]) {
      expect(json[k], k).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    expect(Object.keys(json)).not.toContain("cookie");
    expect(toApiBuildListItem(detail)).toMatchObject({ id: b.id, fileCount: 1 });
    expect(toApiBuildListItem(detail)).not.toHaveProperty("files");
  });

  it("renders a project with its schedule and last build", async () => {
    const p = await project({ scheduleDailyAt: "03:15", scheduleTz: "Europe/Paris", keepLast: 5 });
    const b = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    const summary = (await listProjects(db.pool, SYSTEM_VIEWER)).find((x) => x.id === p.id)!;
    const json = JSON.parse(JSON.stringify(toApiProject(summary)));
    expect(json).toMatchObject({
      name: p.name,
      configUrl: "https://example.org/c.git",
      schedule: { dailyAt: "03:15", cron: null, timeZone: "Europe/Paris", lastRun: null, nextRun: null },
      retention: { keepLast: 5, keepDays: null },
      lastBuild: { id: b.id, state: "QUEUED", finishedAt: null },
    });
    expect(toApiProject(p)).not.toHaveProperty("lastBuild");
    expect(json).not.toHaveProperty("id");
  });
});
