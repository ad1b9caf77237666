// Daily builds: one node-cron task per scheduled project, in the project's time zone. A firing
// queues the build of its slot with reason 'daily' and scheduled_for = the slot, so
// (project, scheduled_for) makes it idempotent across restarts and double firings. On start
// (and on every sweep) a slot missed since schedule_last_run queues exactly ONE catch-up build.
// NOTIFY projects reloads the schedules (no restart needed); next/last run are kept current.
import cron from "node-cron";
import {
  listScheduledProjects,
  requestScheduledBuild,
  setScheduleTimes,
  type Project,
} from "@lexbuilder/shared-models/db";
import {
  cronExpressionOf,
  lastRunAtOrBefore,
  missedSlot,
  nextRunAfter,
  scheduleOf,
  type Schedule,
} from "@lexbuilder/shared-models/schedule";
import { errorMessage, type MasterContext } from "./context.js";
import { SerialRunner } from "./serial-runner.js";

/** A firing may come a moment before or after its slot; the slot is the latest one ≤ now + this. */
const FIRING_TOLERANCE_MS = 5000;

function projectSchedule(p: Project): Schedule | null {
  return scheduleOf(p);
}

/** A timer that fires at a cron expression's times. */
export interface CronTask {
  stop(): Promise<void> | void;
}

/** Time as the scheduler sees it: injectable, so tests fire a slot without waiting for it. */
export interface SchedulerClock {
  now(): Date;
  /** Calls `fire` at every time `expression` matches in `timezone`. */
  schedule(expression: string, timezone: string, name: string, fire: () => void): CronTask;
}

/** The wall clock and node-cron. */
export const systemClock: SchedulerClock = {
  now: () => new Date(),
  schedule(expression, timezone, name, fire) {
    const task = cron.schedule(expression, fire, { timezone, name });
    return { stop: () => task.destroy() };
  },
};

export class Scheduler {
  private readonly tasks = new Map<number, { key: string; task: CronTask }>();
  private readonly reloads: SerialRunner;

  constructor(
    private readonly ctx: MasterContext,
    private readonly clock: SchedulerClock = systemClock,
  ) {
    this.reloads = new SerialRunner(() => this.reloadOnce(), {
      stopping: () => ctx.stopping(),
      onError: (err) => ctx.log.error({ err: errorMessage(err) }, "cannot load the schedules; the sweep will try again"),
    });
  }

  get scheduledProjects(): number {
    return this.tasks.size;
  }

  /** Re-reads every schedule; (re)creates tasks whose expression or zone changed; catches up. */
  reload(): Promise<void> {
    return this.reloads.run();
  }

  private async reloadOnce(): Promise<void> {
    const { pool, log } = this.ctx;
    const projects = await listScheduledProjects(pool);
    const seen = new Set<number>();
    for (const p of projects) {
      const schedule = projectSchedule(p);
      if (!schedule) continue;
      let expression: string;
      try {
        expression = cronExpressionOf(schedule);
        if (!cron.validate(expression)) throw new Error(`node-cron refuses "${expression}"`);
      } catch (err) {
        log.error({ project: p.name, err: errorMessage(err) }, "the project's schedule is invalid; it does not run");
        await setScheduleTimes(pool, p.id, { nextRun: null });
        continue;
      }
      seen.add(p.id);
      const key = `${expression}|${p.scheduleTz}`;
      const current = this.tasks.get(p.id);
      if (!current || current.key !== key) {
        if (current) await current.task.stop();
        const task = this.clock.schedule(expression, p.scheduleTz, `lexbuilder-project-${p.id}`, () => void this.fire(p.id));
        this.tasks.set(p.id, { key, task });
        log.info({ project: p.name, cron: expression, tz: p.scheduleTz }, "schedule loaded");
      }
      await this.catchUp(p, schedule);
    }
    for (const [id, t] of [...this.tasks]) {
      if (seen.has(id)) continue;
      await t.task.stop();
      this.tasks.delete(id);
      await setScheduleTimes(pool, id, { nextRun: null }).catch(() => {});
    }
  }

  /** After downtime: one build for the latest missed slot; and the next run kept current. */
  private async catchUp(p: Project, schedule: Schedule): Promise<void> {
    const now = this.clock.now();
    const slot = missedSlot(schedule, p.scheduleTz, p.scheduleLastRun, now);
    const next = nextRunAfter(schedule, p.scheduleTz, now);
    if (slot) {
      const r = await requestScheduledBuild(this.ctx.pool, p.id, slot, next);
      this.ctx.log.info({ project: p.name, slot: slot.toISOString(), outcome: r.outcome }, "missed daily build caught up");
    } else if ((p.scheduleNextRun?.getTime() ?? null) !== (next?.getTime() ?? null)) {
      await setScheduleTimes(this.ctx.pool, p.id, { nextRun: next });
    }
  }

  /** node-cron fired for a project: queue the build of the slot that just came. */
  async fire(projectId: number): Promise<void> {
    const { pool, log } = this.ctx;
    try {
      const p = (await listScheduledProjects(pool)).find((x) => x.id === projectId);
      const schedule = p ? projectSchedule(p) : null;
      if (!p || !schedule) return;
      const now = this.clock.now();
      const slot = lastRunAtOrBefore(schedule, p.scheduleTz, new Date(now.getTime() + FIRING_TOLERANCE_MS));
      if (!slot) return;
      const next = nextRunAfter(schedule, p.scheduleTz, slot);
      const r = await requestScheduledBuild(pool, p.id, slot, next);
      log.info({ project: p.name, slot: slot.toISOString(), outcome: r.outcome }, "daily build");
    } catch (err) {
      log.error({ project: projectId, err: errorMessage(err) }, "daily build could not be queued; the sweep will catch up");
    }
  }

  async stop(): Promise<void> {
    for (const t of this.tasks.values()) await t.task.stop();
    this.tasks.clear();
  }
}
