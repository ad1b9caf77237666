// Daily builds: slots, one catch-up after downtime, no duplicates across restarts or double
// firings, schedule changes without a restart, and one real node-cron firing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProject, requestBuild, updateProject, type Project } from "@lexbuilder/shared-models";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { Scheduler } from "../src/scheduler.js";
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
  return new Scheduler(testContext(db.pool, db.url), now);
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

  it("fires for real with node-cron, once for the slot", async () => {
    const p = await project({ scheduleCron: "* * * * *" }, null);
    const s = scheduler(() => new Date());
    await s.reload();
    const deadline = Date.now() + 65_000;
    let builds = await dailyBuilds(p.id);
    while (builds.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      builds = await dailyBuilds(p.id);
    }
    await s.fire(p.id); // a second firing within the same minute changes nothing
    await s.stop();
    builds = await dailyBuilds(p.id);
    expect(builds).toHaveLength(1);
    const slot = builds[0]!.scheduled_for;
    expect(slot.getUTCSeconds()).toBe(0);
    expect(slot.getUTCMilliseconds()).toBe(0);
    expect(Date.now() - slot.getTime()).toBeLessThan(60_000);
  }, 90_000);
});
