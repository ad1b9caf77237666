// The one writer of a build's state, attempt, cookie and builder. Each function is one
// transition of states.ts's table: it checks the transition there first, guards its UPDATE by
// the state(s) and cookie it expects, and says whether it won, so a stale actor changes
// nothing. The cookie "<id>-<attempt>" is set together with builder_id when a build is claimed,
// so guarding by the cookie also guards by the owner. The builder's current_build_id moves in
// the same transaction as the build.
//
// Every other UPDATE of a builds row is here too, at the end of this file, so one file answers
// "what can change a build": the log's append cursor (moved in the same statement as the chunk
// it counts) and a pruned build's file pointer. Neither touches state, attempt or owner.
import { assertBuildTransition, canCancel, type BuildState, type FailureKind } from "../states.js";
import type { BuildResult } from "../protocol/types.js";
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import { withTransaction, type Pool, type PoolClient, type Queryable } from "./pool.js";
import { JOB_COLUMNS, toClaimed, type ClaimedBuild, type JobRow } from "./build-lifecycle.js";
import { BuildNotFoundError, BuildStateError } from "./builds.js";
import { isValidId } from "./projects.js";

/** The states a slave may hold a build in and give it back from. */
const HELD: BuildState[] = ["DISPATCHING", "BUILDING", "COLLECTING"];

/**
 * UPDATE … SET state = to WHERE state ∈ from (AND cookie = cookie, when given), plus `set`.
 * Returns the builder the build had and the state it left, or null when it was not in `from`.
 */
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
  const { rows } = await c.query<{ builder_id: number | null; old_state: BuildState }>(
    `WITH o AS (SELECT id, state AS old_state FROM builds WHERE id = $1 FOR UPDATE)
     UPDATE builds b SET state = $3, updated_at = now()${set ? ", " + set : ""}
       FROM o
      WHERE b.id = o.id AND b.state = ANY($2::text[]) AND ($4::text IS NULL OR b.cookie = $4)
      RETURNING b.builder_id, o.old_state`,
    [id, from, to, cookie, ...values],
  );
  if (!rows[0]) return null;
  await notify(c, Channel.builds, { id, state: to });
  return { builderId: rows[0].builder_id, from: rows[0].old_state };
}

async function releaseHeldBuilder(c: Queryable, buildId: number): Promise<void> {
  const { rows } = await c.query<{ id: number }>("UPDATE builders SET current_build_id = NULL WHERE current_build_id = $1 RETURNING id", [buildId]);
  for (const r of rows) await notify(c, Channel.builders, { id: r.id });
}

// --- QUEUED → DISPATCHING -------------------------------------------------------------------

/**
 * Claims up to one QUEUED build for each of `builderIds` (given in order of preference; those
 * no longer enabled, ready and free are skipped), in ONE transaction: builders and builds are
 * locked with SKIP LOCKED so two claimers never wait on each other, and DISPATCHING, attempt+1,
 * the cookie and the builder are recorded before any RPC. Builds go in queue order (priority,
 * then age) to the first preferred builder that supports their architecture. One transaction
 * for many builders because one per builder cost 100 transactions in a row before the last
 * build() could go out.
 */
export async function claimQueuedBuilds(pool: Pool, builderIds: number[]): Promise<ClaimedBuild[]> {
  assertBuildTransition("QUEUED", "DISPATCHING");
  if (builderIds.length === 0) return [];
  return withTransaction(pool, async (c) => {
    const locked = await c.query<{ id: number; architectures: string[] }>(
      `SELECT id, architectures FROM builders
        WHERE id = ANY($1::bigint[]) AND enabled AND ready AND current_build_id IS NULL
        FOR UPDATE SKIP LOCKED`,
      [builderIds],
    );
    const rank = new Map(builderIds.map((id, i) => [id, i]));
    const free = locked.rows.sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
    if (free.length === 0) return [];
    // Per architecture, at most as many candidates as builders that could take them.
    const perArch = new Map<string, number>();
    for (const b of free) for (const a of b.architectures) perArch.set(a, (perArch.get(a) ?? 0) + 1);
    const picked = await c.query<{ id: number; architecture: string }>(
      `SELECT q.id, q.architecture
         FROM unnest($1::text[], $2::int[]) AS a(arch, lim)
         CROSS JOIN LATERAL (
           SELECT id, architecture, priority, requested_at FROM builds
            WHERE state = 'QUEUED' AND architecture = a.arch
            ORDER BY priority DESC, requested_at, id
            LIMIT a.lim
            FOR UPDATE SKIP LOCKED) q
        ORDER BY q.priority DESC, q.requested_at, q.id`,
      [[...perArch.keys()], [...perArch.values()]],
    );
    const buildIds: number[] = [];
    const takers: number[] = [];
    const taken = new Set<number>();
    for (const job of picked.rows) {
      const b = free.find((f) => !taken.has(f.id) && f.architectures.includes(job.architecture));
      if (!b) continue;
      taken.add(b.id);
      buildIds.push(Number(job.id));
      takers.push(b.id);
    }
    if (buildIds.length === 0) return [];
    const upd = await c.query<JobRow<string, number>>(
      `WITH u AS (
         UPDATE builds b SET state = 'DISPATCHING', attempt = b.attempt + 1,
                cookie = b.id::text || '-' || (b.attempt + 1)::text, builder_id = m.builder,
                dispatched_at = now(), started_at = NULL, finished_at = NULL, updated_at = now()
           FROM unnest($1::bigint[], $2::bigint[]) AS m(build, builder)
          WHERE b.id = m.build AND b.state = 'QUEUED'
          RETURNING b.*)
       SELECT ${JOB_COLUMNS("u")}
         FROM u JOIN projects p ON p.id = u.project_id`,
      [buildIds, takers],
    );
    const done = upd.rows;
    await c.query(
      `UPDATE builders bl SET current_build_id = m.build
         FROM unnest($1::bigint[], $2::bigint[]) AS m(build, builder)
        WHERE bl.id = m.builder AND bl.current_build_id IS NULL`,
      [done.map((r) => r.id), done.map((r) => r.builder_id)],
    );
    // One notification per build (the webapp's live views).
    await c.query("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x", [
      Channel.builds,
      done.map((r) => JSON.stringify({ id: Number(r.id), state: "DISPATCHING" })),
    ]);
    return done.map(toClaimed);
  });
}

// --- DISPATCHING → BUILDING -----------------------------------------------------------------

/** DISPATCHING → BUILDING once the slave accepted (or is seen holding) the cookie. */
export async function markBuildStarted(db: Queryable, id: number, cookie: string): Promise<boolean> {
  return (await guarded(db, id, ["DISPATCHING"], "BUILDING", cookie, "started_at = coalesce(started_at, now())", [])) !== null;
}

/**
 * DISPATCHING → BUILDING for many builds their slaves accepted, in one statement (the
 * dispatcher's batch; guarded by state and cookie like markBuildStarted). Returns the ids that moved.
 */
export async function markBuildsStarted(db: Queryable, builds: { id: number; cookie: string }[]): Promise<number[]> {
  assertBuildTransition("DISPATCHING", "BUILDING");
  if (builds.length === 0) return [];
  const { rows } = await db.query<{ id: number }>(
    `UPDATE builds b SET state = 'BUILDING', updated_at = now(), started_at = coalesce(b.started_at, now())
       FROM unnest($1::bigint[], $2::text[]) AS m(id, cookie)
      WHERE b.id = m.id AND b.cookie = m.cookie AND b.state = 'DISPATCHING'
      RETURNING b.id`,
    [builds.map((b) => b.id), builds.map((b) => b.cookie)],
  );
  const ids = rows.map((r) => Number(r.id));
  if (ids.length) {
    await db.query("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x", [Channel.builds, ids.map((id) => JSON.stringify({ id, state: "BUILDING" }))]);
  }
  return ids;
}

// --- BUILDING → COLLECTING → SUCCEEDED ------------------------------------------------------

/** BUILDING → COLLECTING when the slave is WAITING with OK. */
export async function markCollecting(db: Queryable, id: number, cookie: string, info: { configRevision?: string | null }): Promise<boolean> {
  const set = "slave_result = 'OK', config_revision = coalesce($5, config_revision), finished_at = now()";
  return (await guarded(db, id, ["BUILDING"], "COLLECTING", cookie, set, [info.configRevision ?? null])) !== null;
}

/** The config commit the slave reports for the attempt holding `cookie` (no state change). */
export async function setConfigRevision(db: Queryable, id: number, cookie: string, revision: string): Promise<void> {
  await db.query("UPDATE builds SET config_revision = $3 WHERE id = $1 AND cookie = $2 AND config_revision IS DISTINCT FROM $3", [id, cookie, revision]);
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

// --- back to the queue, or FAILED -----------------------------------------------------------

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
    const cur = await c.query<{ requeue_count: number; state: BuildState }>("SELECT requeue_count, state FROM builds WHERE id = $1 AND cookie = $2 FOR UPDATE", [
      id,
      cookie,
    ]);
    const row = cur.rows[0];
    if (!row || !HELD.includes(row.state)) return null;
    const failAs = async (message: string) =>
      (await guarded(c, id, [row.state], "FAILED", cookie, "failure_kind = 'builder', failure_message = $5, finished_at = now()", [message])) ? "FAILED" : null;
    let outcome: GiveBackOutcome;
    if (opts.counted && row.requeue_count >= opts.maxRequeues) {
      outcome = await failAs(`${opts.message} The build was tried on ${row.requeue_count + 1} builders and failed on each; check the builders.`);
    } else if (await identicalQueued(c, id)) {
      // The queued-unique index would refuse this one, so it is failed as superseded (no
      // builder time is lost).
      outcome = await failAs(`${opts.message} An identical build is already queued, so this one was not re-queued.`);
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
    if (outcome) await releaseHeldBuilder(c, id);
    return outcome;
  });
}

/** A second identical build (project, ref, milestone) is queued already. */
async function identicalQueued(c: Queryable, id: number): Promise<boolean> {
  const dup = await c.query(
    `SELECT 1 FROM builds o JOIN builds b ON b.id = $1
      WHERE o.state = 'QUEUED' AND o.project_id = b.project_id AND o.config_ref = b.config_ref
        AND coalesce(o.milestone, '') = coalesce(b.milestone, '')`,
    [id],
  );
  return (dup.rowCount ?? 0) > 0;
}

/**
 * → FAILED with a kind, releasing the builder. With a cookie: the attempt holding it, in any
 * state a slave may hold. With null: a QUEUED build (no slave holds it, so there is no cookie).
 */
export async function failBuild(
  pool: Pool,
  id: number,
  cookie: string | null,
  kind: FailureKind,
  message: string,
  slaveResult?: BuildResult | null,
): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const r = await guarded(
      c,
      id,
      cookie === null ? ["QUEUED"] : HELD,
      "FAILED",
      cookie,
      "failure_kind = $5, failure_message = $6, slave_result = coalesce($7, slave_result), finished_at = coalesce(finished_at, now())",
      [kind, message, slaveResult ?? null],
    );
    if (r) await releaseHeldBuilder(c, id);
    return r !== null;
  });
}

// --- cancel ---------------------------------------------------------------------------------

/**
 * Cancels a build: a queued one at once (CANCELLED), one a slave may hold through abort
 * (CANCELLING; the master finishes it). Cancelling a build already CANCELLING is a no-op.
 * Finished builds throw BuildStateError.
 */
export async function cancelBuild(db: Queryable, id: number): Promise<{ state: BuildState }> {
  if (!isValidId(id)) throw new BuildNotFoundError(id);
  for (let attempt = 0; attempt < 10; attempt++) {
    const { rows } = await db.query<{ state: BuildState }>("SELECT state FROM builds WHERE id = $1", [id]);
    const state = rows[0]?.state;
    if (!state) throw new BuildNotFoundError(id);
    if (state === "CANCELLING") return { state };
    if (!canCancel(state)) throw new BuildStateError(`Build #${id} has already finished (${state}); there is nothing to cancel.`, id, state);
    const to: BuildState = state === "QUEUED" ? "CANCELLED" : "CANCELLING";
    if (await guarded(db, id, [state], to, null, to === "CANCELLED" ? "finished_at = now()" : "", [])) return { state: to };
    // The build moved on under us: look again.
  }
  throw new Error(`Build #${id} kept changing state while being cancelled; try again.`);
}

/** CANCELLING → CANCELLED, releasing the builder. */
export async function finishCancel(pool: Pool, id: number, message?: string): Promise<boolean> {
  return withTransaction(pool, async (c) => {
    const set = "finished_at = coalesce(finished_at, now()), failure_message = coalesce($5, failure_message)";
    const r = await guarded(c, id, ["CANCELLING"], "CANCELLED", null, set, [message ?? null]);
    if (r) await releaseHeldBuilder(c, id);
    return r !== null;
  });
}

// Bookkeeping columns: not transitions, so no state guard; each is guarded by what it moves.

/**
 * Moves the log's append cursor from `offset` by `data.length` and stores the chunk, in one
 * statement, only if `offset` is the current size. Returns the new size, or null when the
 * offset was stale (someone else appended, or the build does not exist).
 */
export async function appendLogChunkAt(db: Queryable, buildId: number, offset: number, data: Buffer): Promise<number | null> {
  const { rows } = await db.query<{ size: number }>(
    `WITH moved AS (
       UPDATE builds SET log_size = log_size + $3 WHERE id = $1 AND log_size = $2 RETURNING log_size
     ), chunk AS (
       INSERT INTO build_log_chunks (build_id, byte_offset, data) SELECT $1, $2, $4::bytea FROM moved RETURNING 1
     )
     SELECT log_size AS size, (SELECT count(*) FROM chunk) AS n FROM moved`,
    [buildId, offset, data.length, data],
  );
  return rows[0]?.size ?? null;
}

/** Deletes the log's chunks and sets its cursor back to 0, in one statement; returns the bytes removed. */
export async function deleteLogChunks(db: Queryable, buildId: number): Promise<number> {
  const { rows } = await db.query<{ removed: number }>(
    `WITH gone AS (DELETE FROM build_log_chunks WHERE build_id = $1 RETURNING length(data) AS n),
          reset AS (UPDATE builds SET log_size = 0 WHERE id = $1 RETURNING 1)
     SELECT coalesce((SELECT sum(n) FROM gone), 0)::bigint AS removed, (SELECT count(*) FROM reset) AS found`,
    [buildId],
  );
  return rows[0]?.removed ?? 0;
}

/** After retention removed a build's files: forget where they were. */
export async function clearArtifactDir(db: Queryable, buildId: number): Promise<void> {
  await db.query("UPDATE builds SET artifact_dir = NULL WHERE id = $1", [buildId]);
}
