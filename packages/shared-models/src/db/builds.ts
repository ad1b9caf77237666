// Builds: requests, retries and reads. State changes are in build-transitions.ts.
import { createHash } from "node:crypto";
import type { Queryable } from "./pool.js";
import { notify } from "./listen.js";
import { Channel } from "./channels.js";
import { clampLimit, isValidId, projectVisibilitySql, ProjectNotFoundError, type Viewer } from "./projects.js";
import { canRetry, type BuildReason, type BuildState, type FailureKind } from "../states.js";
import type { BuildResult } from "../protocol/types.js";
import { checkIdempotencyKey } from "../rules/builds.js";

export interface Build {
  id: number;
  projectId: number;
  state: BuildState;
  failureKind: FailureKind | null;
  failureMessage: string | null;
  reason: BuildReason;
  milestone: string | null;
  requestedBy: number | null;
  priority: number;
  configRef: string;
  configRevision: string | null;
  architecture: string;
  attempt: number;
  cookie: string | null;
  builderId: number | null;
  slaveResult: BuildResult | null;
  requeueCount: number;
  retryOf: number | null;
  scheduledFor: Date | null;
  logSize: number;
  artifactDir: string | null;
  requestedAt: Date;
  dispatchedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

/** A build with the names a page or the API shows. */
export interface BuildDetail extends Build {
  projectName: string;
  projectPrivate: boolean;
  builderName: string | null;
  requestedByName: string | null;
  artifactCount: number;
}

export const BUILD_COLUMNS = (a: string) => `
  ${a}.id, ${a}.project_id AS "projectId", ${a}.state, ${a}.failure_kind AS "failureKind", ${a}.failure_message AS "failureMessage",
  ${a}.reason, ${a}.milestone, ${a}.requested_by AS "requestedBy", ${a}.priority, ${a}.config_ref AS "configRef",
  ${a}.config_revision AS "configRevision", ${a}.architecture, ${a}.attempt, ${a}.cookie, ${a}.builder_id AS "builderId",
  ${a}.slave_result AS "slaveResult", ${a}.requeue_count AS "requeueCount", ${a}.retry_of AS "retryOf",
  ${a}.scheduled_for AS "scheduledFor", ${a}.log_size AS "logSize", ${a}.artifact_dir AS "artifactDir",
  ${a}.requested_at AS "requestedAt", ${a}.dispatched_at AS "dispatchedAt", ${a}.started_at AS "startedAt",
  ${a}.finished_at AS "finishedAt", ${a}.updated_at AS "updatedAt"`;

const DETAIL_SELECT = `
  SELECT ${BUILD_COLUMNS("b")}, p.name AS "projectName", p.private AS "projectPrivate", bl.name AS "builderName",
         u.name AS "requestedByName",
         (SELECT count(*)::int FROM artifacts a WHERE a.build_id = b.id) AS "artifactCount"
    FROM builds b
    JOIN projects p ON p.id = b.project_id
    LEFT JOIN builders bl ON bl.id = b.builder_id
    LEFT JOIN users u ON u.id = b.requested_by`;

export class DuplicateBuildError extends Error {
  constructor(
    readonly projectName: string,
    readonly existingBuildId: number,
  ) {
    super(`An identical build of ${projectName} is already queued (#${existingBuildId}).`);
    this.name = "DuplicateBuildError";
  }
}

/** A scheduled build for this (project, scheduled_for) slot exists already: the slot is done. */
export class DuplicateScheduledBuildError extends Error {
  constructor(
    readonly projectName: string,
    readonly scheduledFor: Date,
    readonly existingBuildId: number,
  ) {
    super(`A build of ${projectName} scheduled for ${scheduledFor.toISOString()} exists already (#${existingBuildId}).`);
    this.name = "DuplicateScheduledBuildError";
  }
}

/** The build is not in a state that allows what was asked (the message says why). */
export class BuildStateError extends Error {
  constructor(
    message: string,
    readonly buildId: number,
    readonly state: BuildState,
  ) {
    super(message);
    this.name = "BuildStateError";
  }
}

export class BuildNotFoundError extends Error {
  constructor(readonly buildId: number) {
    super(`There is no build #${buildId}.`);
    this.name = "BuildNotFoundError";
  }
}

export class ProjectInactiveError extends Error {
  constructor(readonly projectName: string) {
    super(`The project ${projectName} is deactivated; activate it before requesting builds.`);
    this.name = "ProjectInactiveError";
  }
}

export interface BuildRequest {
  projectId: number;
  reason: BuildReason;
  milestone?: string | null;
  /** Defaults to the project's ref. */
  configRef?: string | null;
  requestedBy?: number | null;
  /** The schedule slot of a daily build: (project, scheduledFor) is unique. */
  scheduledFor?: Date | null;
  retryOf?: number | null;
  /** Defaults to the project's priority. */
  priority?: number | null;
  /**
   * A client's key for this request (with requestedBy): a second request with the same key gets
   * IdempotencyKeyUsedError naming the first build instead of a new build.
   */
  idempotencyKey?: string | null;
}

/** The requesting user sent this Idempotency-Key before; `existingBuildId` is what it made. */
export class IdempotencyKeyUsedError extends Error {
  constructor(readonly existingBuildId: number) {
    super(`This Idempotency-Key was already used for build #${existingBuildId}.`);
    this.name = "IdempotencyKeyUsedError";
  }
}

export { IDEMPOTENCY_KEY_PATTERN } from "../rules/builds.js";

/**
 * Queues a build and wakes the master. Refuses a second identical QUEUED build (same project,
 * ref and milestone) with DuplicateBuildError; refuses a second build for one schedule slot with
 * DuplicateScheduledBuildError (thrown rather than returning null, so every caller gets a Build
 * or a sentence). Uses ON CONFLICT DO NOTHING, so a refusal does not abort the caller's
 * transaction.
 */
export async function requestBuild(db: Queryable, req: BuildRequest): Promise<Build> {
  if (req.reason === "milestone" && !req.milestone) throw new Error("A milestone build needs a milestone name.");
  if (req.milestone != null && (req.milestone.length < 1 || req.milestone.length > 100)) {
    throw new Error("A milestone name must be 1 to 100 characters long.");
  }
  if (req.idempotencyKey != null) {
    const key = checkIdempotencyKey(req.idempotencyKey);
    if (key.error !== undefined) throw new Error(key.error);
    if (req.requestedBy == null) throw new Error("An Idempotency-Key needs the requesting user.");
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    const { rows: projects } = await db.query<{ name: string; active: boolean }>("SELECT name, active FROM projects WHERE id = $1", [
      req.projectId,
    ]);
    const project = projects[0];
    if (!project) throw new ProjectNotFoundError(req.projectId);
    if (!project.active) throw new ProjectInactiveError(project.name);
    const { rows } = await db.query<Build>(
      `INSERT INTO builds AS b (project_id, reason, milestone, requested_by, priority, config_ref, architecture, retry_of, scheduled_for, idempotency_key)
       SELECT p.id, $2::text, $3::text, $4::bigint, coalesce($5::int, p.priority), coalesce($6::text, p.config_ref), p.architecture, $7::bigint, $8::timestamptz, $9::text
         FROM projects p WHERE p.id = $1
       ON CONFLICT DO NOTHING
       RETURNING ${BUILD_COLUMNS("b")}`,
      [
        req.projectId,
        req.reason,
        req.milestone ?? null,
        req.requestedBy ?? null,
        req.priority ?? null,
        req.configRef ?? null,
        req.retryOf ?? null,
        req.scheduledFor ?? null,
        req.idempotencyKey ?? null,
      ],
    );
    const build = rows[0];
    if (build) {
      await notify(db, Channel.builds, { id: build.id, state: build.state });
      return build;
    }
    if (req.idempotencyKey != null) {
      const { rows: keyed } = await db.query<{ id: number }>("SELECT id FROM builds WHERE requested_by = $1 AND idempotency_key = $2", [
        req.requestedBy,
        req.idempotencyKey,
      ]);
      if (keyed[0]) throw new IdempotencyKeyUsedError(keyed[0].id);
    }
    // Refused by a unique index: say which one. If the other build moved on meanwhile, try again.
    if (req.scheduledFor) {
      const { rows: slot } = await db.query<{ id: number }>("SELECT id FROM builds WHERE project_id = $1 AND scheduled_for = $2", [
        req.projectId,
        req.scheduledFor,
      ]);
      if (slot[0]) throw new DuplicateScheduledBuildError(project.name, req.scheduledFor, slot[0].id);
    }
    const { rows: same } = await db.query<{ id: number }>(
      `SELECT b.id FROM builds b JOIN projects p ON p.id = b.project_id
        WHERE b.project_id = $1 AND b.state = 'QUEUED' AND b.config_ref = coalesce($2::text, p.config_ref)
          AND coalesce(b.milestone, '') = coalesce($3::text, '')`,
      [req.projectId, req.configRef ?? null, req.milestone ?? null],
    );
    if (same[0]) throw new DuplicateBuildError(project.name, same[0].id);
  }
  throw new Error("The build could not be queued because identical requests kept racing with it; try again.");
}

export async function getBuild(db: Queryable, id: number, viewer?: Viewer): Promise<BuildDetail | null> {
  if (!isValidId(id)) return null;
  const params: unknown[] = [id];
  const visible = viewer ? projectVisibilitySql("p", viewer, params) : "TRUE";
  const { rows } = await db.query<BuildDetail>(prepared(`${DETAIL_SELECT} WHERE b.id = $1 AND ${visible}`, params));
  return rows[0] ?? null;
}

/**
 * A named (prepared) statement for a page query: each connection parses and plans it once
 * instead of on every request. The page queries join four tables and planning them cost more
 * than running them (1-2 ms against 0.2-0.6 ms with 100 000 builds). The name is derived from
 * the text, so one name always means one text (which node-postgres requires).
 */
const statementNames = new Map<string, string>();
function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = statementNames.get(text);
  if (!name) {
    name = `lexbuilder_${createHash("sha1").update(text).digest("hex").slice(0, 20)}`;
    if (statementNames.size < 1000) statementNames.set(text, name);
  }
  return { name, text, values };
}

export interface BuildListOptions {
  viewer: Viewer;
  projectId?: number;
  state?: BuildState | BuildState[];
  reason?: BuildReason;
  builderId?: number;
  /** At most 200; default 50. */
  limit?: number;
  /** Keyset pagination: only builds with an id below this. */
  before?: number | null;
}

export const MAX_BUILD_LIST_LIMIT = 200;

/** Builds the viewer may see, newest first. */
export async function listBuilds(db: Queryable, options: BuildListOptions): Promise<BuildDetail[]> {
  const params: unknown[] = [];
  const where = [projectVisibilitySql("p", options.viewer, params)];
  if (options.projectId !== undefined) {
    params.push(options.projectId);
    where.push(`b.project_id = $${params.length}`);
  }
  if (options.state !== undefined) {
    const states = Array.isArray(options.state) ? options.state : [options.state];
    // One state as an equality, so a (prepared, hence generic) plan can walk
    // builds_project_state_idx / builds_state_idx in id order instead of the primary key.
    params.push(states.length === 1 ? states[0] : states);
    where.push(states.length === 1 ? `b.state = $${params.length}` : `b.state = ANY($${params.length}::text[])`);
  }
  if (options.reason !== undefined) {
    params.push(options.reason);
    where.push(`b.reason = $${params.length}`);
  }
  if (options.builderId !== undefined) {
    params.push(options.builderId);
    where.push(`b.builder_id = $${params.length}`);
  }
  if (options.before !== undefined && options.before !== null) {
    if (!isValidId(options.before)) return [];
    params.push(options.before);
    where.push(`b.id < $${params.length}`);
  }
  const limit = clampLimit(options.limit, 50, MAX_BUILD_LIST_LIMIT);
  params.push(limit);
  const { rows } = await db.query<BuildDetail>(prepared(`${DETAIL_SELECT} WHERE ${where.join(" AND ")} ORDER BY b.id DESC LIMIT $${params.length}`, params));
  return rows;
}

/** A new build of the same project, ref and milestone (reason "retry"); only from FAILED or CANCELLED. */
export async function retryBuild(db: Queryable, id: number, requestedBy: number | null): Promise<Build> {
  if (!isValidId(id)) throw new BuildNotFoundError(id);
  const { rows } = await db.query<Build>(`SELECT ${BUILD_COLUMNS("b")} FROM builds b WHERE b.id = $1`, [id]);
  const old = rows[0];
  if (!old) throw new BuildNotFoundError(id);
  if (!canRetry(old.state)) {
    const why =
      old.state === "SUCCEEDED"
        ? `Build #${id} succeeded; request a new build instead of a retry.`
        : `Build #${id} is still ${old.state}; only failed or cancelled builds can be retried.`;
    throw new BuildStateError(why, id, old.state);
  }
  return requestBuild(db, {
    projectId: old.projectId,
    reason: "retry",
    milestone: old.milestone,
    configRef: old.configRef,
    requestedBy,
    retryOf: id,
  });
}

/** A build row without joins (the master's view). */
export async function getBuildRow(db: Queryable, id: number): Promise<Build | null> {
  if (!isValidId(id)) return null;
  const { rows } = await db.query<Build>(`SELECT ${BUILD_COLUMNS("b")} FROM builds b WHERE b.id = $1`, [id]);
  return rows[0] ?? null;
}
