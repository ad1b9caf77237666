// Daily builds: slots, one catch-up after downtime, no duplicates across restarts or double
// firings, schedule changes without a restart, and a timer firing through an injected clock.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProject, requestBuild, updateProject, type Project } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { Scheduler, systemClock, type SchedulerClock } from "../src/scheduler.js";
import { testContext } from "./support.js";

let db: TestDatabase;
let n = 0;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function project(fields: Partial<Parameters<typeof createProject>[1]>, lastRun: Date | null): Promise<Project> {
  const p = await createProject(db.pool, {
    name: `sched-${++n}`,
    configUrl: "https://example.org/config.git",
    architecture: "amd64",
    ...fields,
  });
  await db.pool.query("UPDATE projects SET schedule_last_run = $2 WHERE id = $1", [p.id, lastRun]);
  return p;
}

async function dailyBuilds(projectId: number): Promise<{ id: number; scheduled_for: Date; reason: string }[]> {
  const { rows } = await db.pool.query("SELECT id, scheduled_for, reason FROM builds WHERE project_id = $1 ORDER BY id", [projectId]);
  return rows;
}

async function times(projectId: number): Promise<{ last: string | null; next: string | null }> {
  const { rows } = await db.pool.query("SELECT schedule_last_run AS l, schedule_next_run AS n FROM projects WHERE id = $1", [projectId]);
  return { last: rows[0].l?.toISOString() ?? null, next: rows[0].n?.toISOString() ?? null };
}

function scheduler(now: () => Date): Scheduler {
  return new Scheduler(testContext(db.pool, db.url), { now, schedule: systemClock.schedule });
}

/** A clock whose time the test sets and whose timers fire when the test says. */
class ManualClock implements SchedulerClock {
  readonly timers = new Map<string, { expression: string; timezone: string; fire: () => void }>();
  constructor(public time: Date) {}
  now(): Date {
    return this.time;
  }
  schedule(expression: string, timezone: string, name: string, fire: () => void) {
    this.timers.set(name, { expression, timezone, fire });
    return { stop: () => void this.timers.delete(name) };
  }
}

describe("the scheduler", () => {
  it("queues exactly one catch-up build after downtime, and none again after a restart", async () => {
    const p = await project({ scheduleDailyAt: "03:00" }, new Date("2026-03-01T03:00:00Z"));
    const now = () => new Date("2026-03-05T12:00:00Z");
    const s1 = scheduler(now);
    await s1.reload();
    await s1.stop();
    const builds = await dailyBuilds(p.id);
    expect(builds).toHaveLength(1);
    expect(builds[0]!.reason).toBe("daily");
    expect(builds[0]!.scheduled_for.toISOString()).toBe("2026-03-05T03:00:00.000Z");
    expect(await times(p.id)).toEqual({ last: "2026-03-05T03:00:00.000Z", next: "2026-03-06T03:00:00.000Z" });

    // A restart (a new scheduler) owes nothing more.
    const s2 = scheduler(() => new Date("2026-03-05T18:00:00Z"));
    await s2.reload();
    await s2.stop();
    expect(await dailyBuilds(p.id)).toHaveLength(1);
  });

  it("fires once per slot, however often it is fired or restarted", async () => {
    const p = await project({ scheduleCron: "30 6 * * *", scheduleTz: "Europe/Paris" }, new Date("2026-03-05T05:30:00Z"));
    let clock = new Date("2026-03-06T05:30:00.040Z"); // 06:30 in Paris (CET)
    const s = scheduler(() => clock);
    await s.fire(p.id);
    await s.fire(p.id);
    clock = new Date("2026-03-06T05:29:58.500Z"); // a firing a moment early still means that slot
    await s.fire(p.id);
    await s.stop();
    const restarted = scheduler(() => new Date("2026-03-06T05:31:00Z"));
    await restarted.reload();
    await restarted.stop();
    const builds = await dailyBuilds(p.id);
    expect(builds.map((b) => b.scheduled_for.toISOString())).toEqual(["2026-03-06T05:30:00.000Z"]);
    expect(await times(p.id)).toEqual({ last: "2026-03-06T05:30:00.000Z", next: "2026-03-07T05:30:00.000Z" });
  });

  it("owes nothing for a schedule that never ran, but shows its next run", async () => {
    const p = await project({ scheduleDailyAt: "23:45" }, null);
    const s = scheduler(() => new Date("2026-03-05T12:00:00Z"));
    await s.reload();
    await s.stop();
    expect(await dailyBuilds(p.id)).toHaveLength(0);
    expect((await times(p.id)).next).toBe("2026-03-05T23:45:00.000Z");
  });

  it("lets an identical queued build serve the slot instead of queueing a second", async () => {
    const p = await project({ scheduleDailyAt: "01:00" }, new Date("2026-03-04T01:00:00Z"));
    const manual = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    const s = scheduler(() => new Date("2026-03-05T01:00:01Z"));
    await s.fire(p.id);
    await s.stop();
    expect((await dailyBuilds(p.id)).map((b) => b.id)).toEqual([manual.id]);
    expect((await times(p.id)).last).toBe("2026-03-05T01:00:00.000Z");
  });

  it("takes a schedule change without a restart, and drops a removed schedule", async () => {
    const p = await project({ scheduleDailyAt: "04:00" }, null);
    const s = scheduler(() => new Date("2026-03-05T12:00:00Z"));
    await s.reload();
    expect((await times(p.id)).next).toBe("2026-03-06T04:00:00.000Z");
    await updateProject(db.pool, p.id, { scheduleDailyAt: null, scheduleCron: "15 13 * * *" });
    await s.reload();
    expect((await times(p.id)).next).toBe("2026-03-05T13:15:00.000Z");
    const before = s.scheduledProjects;
    await updateProject(db.pool, p.id, { scheduleCron: null });
    await s.reload();
    expect(s.scheduledProjects).toBe(before - 1);
    expect((await times(p.id)).next).toBeNull();
    await s.stop();
  });

  it("queues the slot's build when its timer fires, once however often it fires", async () => {
    const p = await project({ scheduleCron: "* * * * *", scheduleTz: "Europe/Paris" }, null);
    const clock = new ManualClock(new Date("2026-03-05T12:00:30Z"));
    const s = new Scheduler(testContext(db.pool, db.url), clock);
    await s.reload();
    const timer = clock.timers.get(`lexbuilder-project-${p.id}`)!;
    expect(timer).toMatchObject({ expression: "* * * * *", timezone: "Europe/Paris" });
    expect(await dailyBuilds(p.id)).toHaveLength(0);

    clock.time = new Date("2026-03-05T12:01:00.030Z");
    timer.fire();
    await waitFor(async () => (await dailyBuilds(p.id)).length > 0);
    await s.fire(p.id); // a second firing within the same minute changes nothing
    const builds = await dailyBuilds(p.id);
    expect(builds.map((b) => b.scheduled_for.toISOString())).toEqual(["2026-03-05T12:01:00.000Z"]);
    expect(await times(p.id)).toEqual({ last: "2026-03-05T12:01:00.000Z", next: "2026-03-05T12:02:00.000Z" });

    await s.stop();
    expect(clock.timers.size).toBe(0);
  });

  it("hands valid expressions to node-cron and stops its timers", async () => {
    const fired: number[] = [];
    const task = systemClock.schedule("30 6 * * *", "Europe/Paris", "lexbuilder-test-timer", () => fired.push(1));
    await task.stop();
    expect(fired).toEqual([]);
  });
});

/** Polls `check` until it holds, failing after a deadline. */
async function waitFor(check: () => Promise<boolean>, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("the expected change did not happen within the deadline");
    await new Promise((r) => setTimeout(r, 20));
  }
}
