// Daily builds: one node-cron task per scheduled project, in the project's time zone. A firing
// queues the build of its slot with reason 'daily' and scheduled_for = the slot, so
// (project, scheduled_for) makes it idempotent across restarts and double firings. On start
// (and on every sweep) a slot missed since schedule_last_run queues exactly ONE catch-up build.
// NOTIFY projects reloads the schedules (no restart needed); next/last run are kept current.
import cron, { type ScheduledTask } from "node-cron";
import {
  cronExpressionOf,
  lastRunAtOrBefore,
  listScheduledProjects,
  missedSlot,
  nextRunAfter,
  requestScheduledBuild,
  scheduleOf,
  setScheduleTimes,
  type Project,
  type Schedule,
} from "@lexbuilder/shared-models";
import { errorMessage, type MasterContext } from "./context.js";

/** A firing may come a moment before or after its slot; the slot is the latest one ≤ now + this. */
const FIRING_TOLERANCE_MS = 5000;

function projectSchedule(p: Project): Schedule | null {
  return scheduleOf(p);
}

export class Scheduler {
  private readonly tasks = new Map<number, { key: string; task: ScheduledTask }>();
  private reloading: Promise<void> | null = null;
  private reloadAgain = false;

  constructor(
    private readonly ctx: MasterContext,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get scheduledProjects(): number {
    return this.tasks.size;
  }

  /** Re-reads every schedule; (re)creates tasks whose expression or zone changed; catches up. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.reloadAgain = false;
          await this.reloadOnce();
        } while (this.reloadAgain && !this.ctx.stopping());
      } catch (err) {
        this.ctx.log.error({ err: errorMessage(err) }, "cannot load the schedules; the sweep will try again");
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
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
        if (current) await current.task.destroy();
        const task = cron.schedule(expression, () => this.fire(p.id), { timezone: p.scheduleTz, name: `lexbuilder-project-${p.id}` });
        this.tasks.set(p.id, { key, task });
        log.info({ project: p.name, cron: expression, tz: p.scheduleTz }, "schedule loaded");
      }
      await this.catchUp(p, schedule);
    }
    for (const [id, t] of [...this.tasks]) {
      if (seen.has(id)) continue;
      await t.task.destroy();
      this.tasks.delete(id);
      await setScheduleTimes(pool, id, { nextRun: null }).catch(() => {});
    }
  }

  /** After downtime: one build for the latest missed slot; and the next run kept current. */
  private async catchUp(p: Project, schedule: Schedule): Promise<void> {
    const now = this.now();
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
      const now = this.now();
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
    for (const t of this.tasks.values()) await t.task.destroy();
    this.tasks.clear();
  }
}
