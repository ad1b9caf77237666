// The master's reads of the builds a slave may hold, and its builder failure accounting. The
// builds' state changes themselves are in build-transitions.ts.
import type { BuildState } from "../states.js";
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import type { Queryable } from "./pool.js";

/** A project's extra environment as the slave receives it: every value a string. */
export function stringEnv(env: Record<string, unknown> | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = typeof v === "string" ? v : JSON.stringify(v);
  return out;
}

/** What build(cookie, args) needs of a build, apart from its cookie and builder. */
interface Job {
  id: number;
  attempt: number;
  projectId: number;
  projectName: string;
  configUrl: string;
  configRef: string;
  architecture: string;
  suite: string;
  env: Record<string, string>;
  requestedAt: Date;
}

/** The columns of a job, with the build aliased `b` and its project `p`. */
export const JOB_COLUMNS = (b: string) => `
  ${b}.id, ${b}.cookie, ${b}.attempt, ${b}.builder_id, ${b}.project_id, p.name AS project_name,
  p.config_url, ${b}.config_ref, ${b}.architecture, p.suite, p.extra_env, ${b}.requested_at`;

/** A row of JOB_COLUMNS. */
export interface JobRow<Held = string | null, Builder = number | null> {
  id: number;
  cookie: Held;
  attempt: number;
  builder_id: Builder;
  project_id: number;
  project_name: string;
  config_url: string;
  config_ref: string;
  architecture: string;
  suite: string;
  extra_env: Record<string, unknown> | null;
  requested_at: Date;
}

function toJob(r: JobRow<unknown, unknown>): Job {
  return {
    id: r.id,
    attempt: r.attempt,
    projectId: r.project_id,
    projectName: r.project_name,
    configUrl: r.config_url,
    configRef: r.config_ref,
    architecture: r.architecture,
    suite: r.suite,
    env: stringEnv(r.extra_env),
    requestedAt: r.requested_at,
  };
}

/** What the dispatcher needs to send build(cookie, args) for a claimed build. */
export interface ClaimedBuild extends Job {
  cookie: string;
  builderId: number;
}

export function toClaimed(r: JobRow<string, number>): ClaimedBuild {
  return { ...toJob(r), cookie: r.cookie, builderId: r.builder_id };
}

/** A build that a builder may hold, as the master's loops see it. */
export interface ActiveBuild extends Job {
  state: BuildState;
  cookie: string | null;
  builderId: number | null;
  logSize: number;
  requeueCount: number;
  updatedAt: Date;
  artifactDir: string | null;
}

export const ACTIVE_COLUMNS = `${JOB_COLUMNS("b")}, b.state, b.log_size, b.requeue_count, b.updated_at, b.artifact_dir`;

export interface ActiveRow extends JobRow {
  state: BuildState;
  log_size: number;
  requeue_count: number;
  updated_at: Date;
  artifact_dir: string | null;
}

export function toActive(r: ActiveRow): ActiveBuild {
  return {
    ...toJob(r),
    state: r.state,
    cookie: r.cookie,
    builderId: r.builder_id,
    logSize: r.log_size,
    requeueCount: r.requeue_count,
    updatedAt: r.updated_at,
    artifactDir: r.artifact_dir,
  };
}

/** The build a builder holds (by builders.current_build_id), if any. */
export async function getBuilderCurrentBuild(db: Queryable, builderId: number): Promise<ActiveBuild | null> {
  const { rows } = await db.query<ActiveRow>(
    `SELECT ${ACTIVE_COLUMNS} FROM builders bl
       JOIN builds b ON b.id = bl.current_build_id
       JOIN projects p ON p.id = b.project_id
      WHERE bl.id = $1`,
    [builderId],
  );
  return rows[0] ? toActive(rows[0]) : null;
}

export async function getActiveBuild(db: Queryable, buildId: number): Promise<ActiveBuild | null> {
  const { rows } = await db.query<ActiveRow>(
    `SELECT ${ACTIVE_COLUMNS} FROM builds b JOIN projects p ON p.id = b.project_id WHERE b.id = $1`,
    [buildId],
  );
  return rows[0] ? toActive(rows[0]) : null;
}

/** Builds in the given states (default: every state a slave may hold). */
export async function listBuildsInStates(
  db: Queryable,
  states: BuildState[] = ["DISPATCHING", "BUILDING", "COLLECTING", "CANCELLING"],
): Promise<ActiveBuild[]> {
  const { rows } = await db.query<ActiveRow>(
    `SELECT ${ACTIVE_COLUMNS} FROM builds b JOIN projects p ON p.id = b.project_id
      WHERE b.state = ANY($1::text[]) ORDER BY b.id`,
    [states],
  );
  return rows.map(toActive);
}

/**
 * A build that has waited in DISPATCHING/BUILDING/COLLECTING/CANCELLING but whose builder was
 * deleted or no longer points at it cannot finish: the master's sweep finds these.
 */
export async function listOrphanedActiveBuilds(db: Queryable): Promise<ActiveBuild[]> {
  const { rows } = await db.query<ActiveRow>(
    `SELECT ${ACTIVE_COLUMNS} FROM builds b JOIN projects p ON p.id = b.project_id
      WHERE b.state IN ('DISPATCHING', 'BUILDING', 'COLLECTING', 'CANCELLING')
        AND NOT EXISTS (SELECT 1 FROM builders bl WHERE bl.current_build_id = b.id)`,
  );
  return rows.map(toActive);
}

// --- builder failure accounting (the judge's numbers) ---------------------------------------

/** Marks a builder OFFLINE (its scans keep failing); notifies when the state changed. */
export async function markBuilderOffline(db: Queryable, builderId: number): Promise<void> {
  const { rowCount } = await db.query("UPDATE builders SET state = 'OFFLINE' WHERE id = $1 AND state <> 'OFFLINE'", [builderId]);
  if (rowCount) await notify(db, Channel.builders, { id: builderId });
}

/**
 * Counts one failure against a builder; at `disableAfter` counted failures it is disabled with
 * the reason stored. Returns the new count and whether this call disabled it.
 */
export async function countBuilderFailure(
  db: Queryable,
  builderId: number,
  reason: string,
  disableAfter: number,
): Promise<{ failureCount: number; disabled: boolean }> {
  const { rows } = await db.query<{ failure_count: number; disabled_now: boolean }>(
    `UPDATE builders SET failure_count = failure_count + 1,
            enabled = CASE WHEN failure_count + 1 >= $3 THEN false ELSE enabled END,
            disabled_reason = CASE WHEN failure_count + 1 >= $3 AND enabled
                                   THEN $2 ELSE disabled_reason END
      WHERE id = $1
      RETURNING failure_count, (failure_count >= $3) AS disabled_now`,
    [builderId, `Disabled by the master after ${disableAfter} failures; the last one: ${reason}`, disableAfter],
  );
  const r = rows[0];
  if (!r) return { failureCount: 0, disabled: false };
  await notify(db, Channel.builders, { id: builderId });
  return { failureCount: r.failure_count, disabled: r.disabled_now && r.failure_count === disableAfter };
}
