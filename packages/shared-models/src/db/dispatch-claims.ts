// Claiming queued builds for many idle builders in ONE transaction (the dispatcher's fast path):
// with 100 free builders, claiming one builder at a time cost 100 transactions in a row before
// the last build() could go out. Same guarantees as claimNextQueuedBuild: builders and builds
// locked with SKIP LOCKED, DISPATCHING + attempt + cookie + builder taken before any RPC.
import { assertBuildTransition } from "../states.js";
import { Channel } from "./channels.js";
import { stringEnv, type ClaimedBuild } from "./build-lifecycle.js";
import { withTransaction, type Pool, type Queryable } from "./pool.js";

interface Candidate {
  id: number;
  architecture: string;
  priority: number;
  requested_at: Date;
}

interface ClaimedRow {
  id: number;
  cookie: string;
  attempt: number;
  builder_id: number;
  project_id: number;
  project_name: string;
  config_url: string;
  config_ref: string;
  architecture: string;
  suite: string;
  extra_env: Record<string, unknown> | null;
  requested_at: Date;
}

export interface DispatchableBuilder {
  id: number;
  name: string;
  architectures: string[];
}

/**
 * The builders a dispatch pass may claim for, in order of preference (fewest failures, then the
 * most recently heard from): enabled, ready, last seen IDLE, holding no build, and supporting an
 * architecture some QUEUED build needs. One statement: under a burst of requests every round
 * trip before the claim delays the first builds.
 */
export async function listBuildersForQueuedBuilds(db: Queryable): Promise<DispatchableBuilder[]> {
  const { rows } = await db.query<DispatchableBuilder>(
    `SELECT id, name, architectures FROM builders
      WHERE enabled AND ready AND state = 'IDLE' AND current_build_id IS NULL
        AND architectures && ARRAY(SELECT DISTINCT architecture FROM builds WHERE state = 'QUEUED')
      ORDER BY failure_count, last_contact_at DESC NULLS LAST, id`,
  );
  return rows;
}

/**
 * Claims up to one QUEUED build for each of `builderIds` (given in order of preference; those
 * no longer enabled, ready and free are skipped). Builds go in queue order (priority, then age)
 * to the first preferred builder that supports their architecture. Returns the claims made.
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
    const picked = await c.query<Candidate>(
      `SELECT q.id, q.architecture, q.priority, q.requested_at
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
    const upd = await c.query<ClaimedRow>(
      `WITH u AS (
         UPDATE builds b SET state = 'DISPATCHING', attempt = b.attempt + 1,
                cookie = b.id::text || '-' || (b.attempt + 1)::text, builder_id = m.builder,
                dispatched_at = now(), started_at = NULL, finished_at = NULL, updated_at = now()
           FROM unnest($1::bigint[], $2::bigint[]) AS m(build, builder)
          WHERE b.id = m.build AND b.state = 'QUEUED'
          RETURNING b.*)
       SELECT u.id, u.cookie, u.attempt, u.builder_id, u.project_id, p.name AS project_name, p.config_url,
              u.config_ref, u.architecture, p.suite, p.extra_env, u.requested_at
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
    // One notification per build, as claimNextQueuedBuild sends (the webapp's live views).
    await c.query("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x", [
      Channel.builds,
      done.map((r) => JSON.stringify({ id: Number(r.id), state: "DISPATCHING" })),
    ]);
    return done.map((r) => ({
      id: Number(r.id),
      cookie: r.cookie,
      attempt: r.attempt,
      builderId: Number(r.builder_id),
      projectId: Number(r.project_id),
      projectName: r.project_name,
      configUrl: r.config_url,
      configRef: r.config_ref,
      architecture: r.architecture,
      suite: r.suite,
      env: stringEnv(r.extra_env),
      requestedAt: r.requested_at,
    }));
  });
}

/**
 * DISPATCHING → BUILDING for many builds their slaves accepted, in one statement (guarded by
 * state and cookie like markBuildStarted). Returns the ids that moved.
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
    await db.query("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x", [
      Channel.builds,
      ids.map((id) => JSON.stringify({ id, state: "BUILDING" })),
    ]);
  }
  return ids;
}
