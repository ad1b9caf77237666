// The master's side of a build's life: claim a queued build for a builder, and move it through
// DISPATCHING → BUILDING → COLLECTING → SUCCEEDED (or back to QUEUED, FAILED, CANCELLED),
// releasing the builder in the same transaction. Every UPDATE is guarded by the expected
// state(s) and cookie, checked against states.ts first, so a stale actor changes nothing.
import { assertBuildTransition, type BuildState, type FailureKind } from "../states.js";
import type { BuildResult } from "../protocol/types.js";
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import { withTransaction, type Pool, type PoolClient, type Queryable } from "./pool.js";

/** What the dispatcher needs to send build(cookie, args) for a claimed build. */
export interface ClaimedBuild {
  id: number;
  cookie: string;
  attempt: number;
  builderId: number;
  projectId: number;
  projectName: string;
  configUrl: string;
  configRef: string;
  architecture: string;
  suite: string;
  env: Record<string, string>;
  requestedAt: Date;
}

/** A build that a builder may hold, as the master's loops see it. */
export interface ActiveBuild {
  id: number;
  state: BuildState;
  cookie: string | null;
  attempt: number;
  builderId: number | null;
  projectId: number;
  projectName: string;
  configUrl: string;
  configRef: string;
  architecture: string;
  suite: string;
  env: Record<string, string>;
  logSize: number;
  requeueCount: number;
  requestedAt: Date;
  updatedAt: Date;
  artifactDir: string | null;
}

const ACTIVE_COLUMNS = `
  b.id, b.state, b.cookie, b.attempt, b.builder_id, b.project_id, p.name AS project_name,
  p.config_url, b.config_ref, b.architecture, p.suite, p.extra_env, b.log_size, b.requeue_count,
  b.requested_at, b.updated_at, b.artifact_dir`;

interface ActiveRow {
  id: number;
  state: BuildState;
  cookie: string | null;
  attempt: number;
  builder_id: number | null;
  project_id: number;
  project_name: string;
  config_url: string;
  config_ref: string;
  architecture: string;
  suite: string;
  extra_env: Record<string, unknown>;
  log_size: number;
  requeue_count: number;
  requested_at: Date;
  updated_at: Date;
  artifact_dir: string | null;
}

/** A project's extra environment as the slave receives it: every value a string. */
export function stringEnv(env: Record<string, unknown> | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = typeof v === "string" ? v : JSON.stringify(v);
  return out;
}

function toActive(r: ActiveRow): ActiveBuild {
  return {
    id: r.id,
    state: r.state,
    cookie: r.cookie,
    attempt: r.attempt,
    builderId: r.builder_id,
    projectId: r.project_id,
    projectName: r.project_name,
    configUrl: r.config_url,
    configRef: r.config_ref,
    architecture: r.architecture,
    suite: r.suite,
    env: stringEnv(r.extra_env),
    logSize: r.log_size,
    requeueCount: r.requeue_count,
    requestedAt: r.requested_at,
    updatedAt: r.updated_at,
    artifactDir: r.artifact_dir,
  };
}

/**
 * In ONE transaction: lock the builder (still enabled, idle and free), take the highest-priority
 * oldest QUEUED build of an architecture it supports (SKIP LOCKED, so two claimers never wait on
 * each other), mark it DISPATCHING with attempt+1 and cookie "<id>-<attempt>", and set the
 * builder's current build. Returns null when the builder is no longer free or nothing fits.
 */
export async function claimNextQueuedBuild(pool: Pool, builder: { id: number; architectures?: string[] }): Promise<ClaimedBuild | null> {
  assertBuildTransition("QUEUED", "DISPATCHING");
  return withTransaction(pool, async (c) => {
    const b = await c.query<{ architectures: string[] }>(
      `SELECT architectures FROM builders
        WHERE id = $1 AND enabled AND ready AND current_build_id IS NULL
        FOR UPDATE SKIP LOCKED`,
      [builder.id],
    );
    if (b.rowCount === 0) return null;
    const archs = b.rows[0]!.architectures;
    const pick = await c.query<{ id: number }>(
      `SELECT id FROM builds
        WHERE state = 'QUEUED' AND architecture = ANY($1::text[])
        ORDER BY priority DESC, requested_at, id
        LIMIT 1
        FOR UPDATE SKIP LOCKED`,
      [archs],
    );
    if (pick.rowCount === 0) return null;
    const id = pick.rows[0]!.id;
    const upd = await c.query<ActiveRow>(
      `WITH u AS (
         UPDATE builds SET state = 'DISPATCHING', attempt = attempt + 1,
                cookie = id::text || '-' || (attempt + 1)::text, builder_id = $2,
                dispatched_at = now(), started_at = NULL, finished_at = NULL, updated_at = now()
          WHERE id = $1 AND state = 'QUEUED'
          RETURNING *)
       SELECT ${ACTIVE_COLUMNS} FROM u b JOIN projects p ON p.id = b.project_id`,
      [id, builder.id],
    );
    if (upd.rowCount === 0) return null;
    await c.query("UPDATE builders SET current_build_id = $2 WHERE id = $1 AND current_build_id IS NULL", [builder.id, id]);
    await notify(c, Channel.builds, { id, state: "DISPATCHING" });
    const r = toActive(upd.rows[0]!);
    return {
      id: r.id,
      cookie: r.cookie!,
      attempt: r.attempt,
      builderId: builder.id,
      projectId: r.projectId,
      projectName: r.projectName,
      configUrl: r.configUrl,
      configRef: r.configRef,
      architecture: r.architecture,
      suite: r.suite,
      env: r.env,
      requestedAt: r.requestedAt,
    };
  });
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

// --- guarded transitions -------------------------------------------------------------------

async function guarded(
  c: Queryable,
  id: number,
  from: BuildState[],
  to: BuildState,
  cookie: string | null,
  set: string,
  values: unknown[],
): Promise<{ builderId: number | null; from: BuildState } | null> {
  for (const f of from) assertBuildTransition(f, to);
  const base = [id, from, to, cookie];
  const { rows } = await c.query<{ builder_id: number | null; old_state: BuildState }>(
    `WITH o AS (SELECT id, state AS old_state FROM builds WHERE id = $1 FOR UPDATE)
     UPDATE builds b SET state = $3, updated_at = now()${set ? ", " + set : ""}
       FROM o
      WHERE b.id = o.id AND b.state = ANY($2::text[]) AND ($4::text IS NULL OR b.cookie = $4)
      RETURNING b.builder_id, o.old_state`,
    [...base, ...values],
  );
  if (!rows[0]) return null;
  await notify(c, Channel.builds, { id, state: to });
  return { builderId: rows[0].builder_id, from: rows[0].old_state };
}

async function releaseHeldBuilder(c: PoolClient, buildId: number): Promise<void> {
  const { rows } = await c.query<{ id: number }>(
    "UPDATE builders SET current_build_id = NULL WHERE current_build_id = $1 RETURNING id",
    [buildId],
  );
  for (const r of rows) await notify(c, Channel.builders, { id: r.id });
}

/** DISPATCHING → BUILDING once the slave accepted (or is seen holding) the cookie. */
export async function markBuildStarted(db: Queryable, id: number, cookie: string): Promise<boolean> {
  return (await guarded(db, id, ["DISPATCHING"], "BUILDING", cookie, "started_at = coalesce(started_at, now())", [])) !== null;
}

/** BUILDING → COLLECTING when the slave is WAITING with OK. */
export async function markCollecting(db: Queryable, id: number, cookie: string, info: { configRevision?: string | null }): Promise<boolean> {
  return (
    (await guarded(
      db,
      id,
      ["BUILDING"],
      "COLLECTING",
      cookie,
      "slave_result = 'OK', config_revision = coalesce($5, config_revision), finished_at = now()",
      [info.configRevision ?? null],
    )) !== null
  );
}

export async function setConfigRevision(db: Queryable, id: number, cookie: string, revision: string): Promise<void> {
  await db.query("UPDATE builds SET config_revision = $3 WHERE id = $1 AND cookie = $2 AND config_revision IS DISTINCT FROM $3", [id, cookie, revision]);
}

export type GiveBackOutcome = "QUEUED" | "FAILED" | null;

/**
 * Gives a job back to the queue (DISPATCHING/BUILDING/COLLECTING → QUEUED) and releases its
 * builder, in one transaction. When `counted`, the failure counts against the job: past
 * `maxRequeues` counted re-queues it ends FAILED with kind `builder` instead. Returns what
 * happened, or null when the build was no longer in a state/cookie this actor expected.
 */
export async function giveBackBuild(
  pool: Pool,
  id: number,
  cookie: string,
  opts: { counted: boolean; message: string; maxRequeues: number },
): Promise<GiveBackOutcome> {
  return withTransaction(pool, async (c) => {
    const cur = await c.query<{ requeue_count: number; state: BuildState }>(
      "SELECT requeue_count, state FROM builds WHERE id = $1 AND cookie = $2 FOR UPDATE",
      [id, cookie],
    );
    const row = cur.rows[0];
    if (!row || !["DISPATCHING", "BUILDING", "COLLECTING"].includes(row.state)) return null;
    let outcome: GiveBackOutcome;
    if (opts.counted && row.requeue_count >= opts.maxRequeues) {
      const r = await guarded(
        c,
        id,
        [row.state],
        "FAILED",
        cookie,
        "failure_kind = 'builder', failure_message = $5, finished_at = now()",
        [`${opts.message} The build was tried on ${row.requeue_count + 1} builders and failed on each; check the builders.`],
      );
      outcome = r ? "FAILED" : null;
    } else {
      // A second identical build may have been queued meanwhile: the queued-unique index would
      // refuse this one, so it is failed as superseded (no builder time is lost).
      const dup = await c.query(
        `SELECT 1 FROM builds o JOIN builds b ON b.id = $1
          WHERE o.state = 'QUEUED' AND o.project_id = b.project_id AND o.config_ref = b.config_ref
            AND coalesce(o.milestone, '') = coalesce(b.milestone, '')`,
        [id],
      );
      if (dup.rowCount) {
        const r = await guarded(c, id, [row.state], "FAILED", cookie, "failure_kind = 'builder', failure_message = $5, finished_at = now()", [
          `${opts.message} An identical build is already queued, so this one was not re-queued.`,
        ]);
        outcome = r ? "FAILED" : null;
      } else {
        const r = await guarded(
          c,
          id,
          [row.state],
          "QUEUED",
          cookie,
          `cookie = NULL, builder_id = NULL, dispatched_at = NULL, started_at = NULL, finished_at = NULL,
           slave_result = NULL, artifact_dir = NULL, failure_message = $5,
           requeue_count = requeue_count + $6, log_size = 0`,
          [opts.message, opts.counted ? 1 : 0],
        );
        outcome = r ? "QUEUED" : null;
        if (r) {
          // The next attempt's log starts at offset 0 on its slave: the old one goes.
          await c.query("DELETE FROM build_log_chunks WHERE build_id = $1", [id]);
          await notify(c, Channel.log, { id, size: 0 });
        }
      }
    }
    if (outcome) await releaseHeldBuilder(c, id);
    return outcome;
  });
}

/** Any state a slave may hold → FAILED with a kind, releasing the builder. */
export async function failBuild(
  pool: Pool,
  id: number,
  cookie: string,
  kind: FailureKind,
  message: string,
  slaveResult?: BuildResult | null,
): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const r = await guarded(
      c,
      id,
      ["DISPATCHING", "BUILDING", "COLLECTING"],
      "FAILED",
      cookie,
      "failure_kind = $5, failure_message = $6, slave_result = coalesce($7, slave_result), finished_at = coalesce(finished_at, now())",
      [kind, message, slaveResult ?? null],
    );
    if (r) await releaseHeldBuilder(c, id);
    return r !== null;
  });
}

/**
 * COLLECTING → SUCCEEDED, in the transaction the caller uses to write the artifact and
 * manifest rows (so files, rows and state go together); releases the builder and resets its
 * counted failures (a success clears the builder's record, as in launchpad).
 */
export async function markSucceeded(c: PoolClient, id: number, cookie: string, artifactDir: string): Promise<boolean> {
  const r = await guarded(c, id, ["COLLECTING"], "SUCCEEDED", cookie, "artifact_dir = $5", [artifactDir]);
  if (!r) return false;
  if (r.builderId !== null) await c.query("UPDATE builders SET failure_count = 0 WHERE id = $1", [r.builderId]);
  await releaseHeldBuilder(c, id);
  return true;
}

/** CANCELLING → CANCELLED, releasing the builder. */
export async function finishCancel(pool: Pool, id: number, message?: string): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const r = await guarded(c, id, ["CANCELLING"], "CANCELLED", null, "finished_at = coalesce(finished_at, now()), failure_message = coalesce($5, failure_message)", [
      message ?? null,
    ]);
    if (r) await releaseHeldBuilder(c, id);
    return r !== null;
  });
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
