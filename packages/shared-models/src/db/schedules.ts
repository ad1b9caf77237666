// Daily builds in the database: queue the build of one slot (idempotent by the unique
// (project_id, scheduled_for)) and record it as the project's last run, in one transaction.
// (Which projects have a schedule: listScheduledProjects in projects.ts; next run: setScheduleTimes.)
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import { isUniqueViolation, withTransaction, type Pool } from "./pool.js";

export type ScheduledRequestOutcome =
  /** A new build was queued for the slot. */
  | { outcome: "queued"; buildId: number }
  /** The slot already has its build (a restart, or a second firing). */
  | { outcome: "exists"; buildId: number }
  /** An identical build is already waiting in the queue; it serves this slot. */
  | { outcome: "already-queued"; buildId: number | null }
  /** The project is gone or inactive. */
  | { outcome: "no-project" };

/**
 * Queues the daily build of one slot, and records the slot as the project's last run, in one
 * transaction. Idempotent: the same slot twice gives "exists".
 */
export async function requestScheduledBuild(pool: Pool, projectId: number, scheduledFor: Date, nextRun: Date | null): Promise<ScheduledRequestOutcome> {
  return withTransaction(pool, async (c) => {
    const p = await c.query<{ config_ref: string; architecture: string; priority: number }>(
      "SELECT config_ref, architecture, priority FROM projects WHERE id = $1 AND active FOR UPDATE",
      [projectId],
    );
    const project = p.rows[0];
    if (!project) return { outcome: "no-project" } as const;
    await c.query(
      `UPDATE projects SET schedule_last_run = greatest(coalesce(schedule_last_run, $2), $2), schedule_next_run = $3
        WHERE id = $1`,
      [projectId, scheduledFor, nextRun],
    );
    const existing = await c.query<{ id: number }>("SELECT id FROM builds WHERE project_id = $1 AND scheduled_for = $2", [projectId, scheduledFor]);
    if (existing.rows[0]) return { outcome: "exists", buildId: existing.rows[0].id } as const;
    const queued = await c.query<{ id: number }>(
      "SELECT id FROM builds WHERE project_id = $1 AND state = 'QUEUED' AND config_ref = $2 AND milestone IS NULL",
      [projectId, project.config_ref],
    );
    if (queued.rows[0]) return { outcome: "already-queued", buildId: queued.rows[0].id } as const;
    await c.query("SAVEPOINT request");
    try {
      const ins = await c.query<{ id: number }>(
        `INSERT INTO builds (project_id, reason, priority, config_ref, architecture, scheduled_for)
         VALUES ($1, 'daily', $2, $3, $4, $5) RETURNING id`,
        [projectId, project.priority, project.config_ref, project.architecture, scheduledFor],
      );
      const buildId = ins.rows[0]!.id;
      await c.query(
        `INSERT INTO audit_log (actor, action, object_type, object_id, details)
         VALUES ('scheduler', 'build.request', 'build', $1, $2)`,
        [String(buildId), JSON.stringify({ project_id: projectId, scheduled_for: scheduledFor.toISOString() })],
      );
      await notify(c, Channel.builds, { id: buildId, state: "QUEUED" });
      return { outcome: "queued", buildId } as const;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      await c.query("ROLLBACK TO SAVEPOINT request");
      return { outcome: "already-queued", buildId: null } as const;
    }
  });
}
