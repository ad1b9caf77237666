// Projects: what to build (a branch of live-build configuration), how often, and who may see it.
import type { Queryable } from "./pool.js";
import { isUniqueViolation } from "./pool.js";
import { notify } from "./listen.js";
import { Channel } from "./channels.js";
import type { BuildState, Role } from "../states.js";

/**
 * Who is asking. `userId: null, role: null` is an anonymous visitor (public projects only);
 * `SYSTEM_VIEWER` (role admin, no user) is the master and the admin CLI, which see everything.
 */
export interface Viewer {
  userId: number | null;
  role: Role | null;
}
/** True for a value that can be a bigserial id (a positive safe integer); lookups of anything else find nothing. */
export function isValidId(id: unknown): id is number {
  return typeof id === "number" && Number.isSafeInteger(id) && id > 0;
}

/**
 * A name that could be stored at all: PostgreSQL text cannot hold NUL, and no name column is
 * longer than 255 characters. Lookups answer "not found" for anything else instead of an error.
 */
export function isLookupName(name: unknown): name is string {
  return typeof name === "string" && name.length > 0 && name.length <= 255 && !name.includes("\0");
}

/** A list limit: a whole number in [1, max], or `fallback` for anything unusable (NaN, undefined). */
export function clampLimit(limit: unknown, fallback: number, max: number): number {
  const n = typeof limit === "number" ? Math.floor(limit) : Number.NaN;
  if (!Number.isFinite(n)) return fallback;
  return Math.max(1, Math.min(max, n));
}

export const ANONYMOUS_VIEWER: Viewer = Object.freeze({ userId: null, role: null });
export const SYSTEM_VIEWER: Viewer = Object.freeze({ userId: null, role: "admin" });

/**
 * The SQL condition "the viewer may see the project aliased `alias`". Parameters are appended
 * to `params` (so the $n parameters number themselves). Private projects are visible only to
 * admins and to members.
 */
export function projectVisibilitySql(alias: string, viewer: Viewer | undefined | null, params: unknown[]): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(alias)) throw new Error(`Bad SQL alias ${alias}.`);
  if (viewer?.role === "admin") return "TRUE";
  if (viewer?.userId == null) return `(NOT ${alias}.private)`;
  params.push(viewer.userId);
  return `(NOT ${alias}.private OR EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = ${alias}.id AND pm.user_id = $${params.length}))`;
}

/** A project's text fields, kept as they are by the database, the API and the form alike. */
const PROJECT_TEXT_FIELDS = ["name", "title", "description", "configUrl", "configRef", "architecture", "suite"] as const;
export type ProjectText = Record<(typeof PROJECT_TEXT_FIELDS)[number], string>;

/** Just the text fields of a project (or of anything that has them, such as the project form). */
export function projectText(p: ProjectText): ProjectText {
  return Object.fromEntries(PROJECT_TEXT_FIELDS.map((k) => [k, p[k]])) as ProjectText;
}

export interface Project extends ProjectText {
  id: number;
  extraEnv: Record<string, string>;
  priority: number;
  active: boolean;
  private: boolean;
  /** "HH:MM" in scheduleTz, or null. */
  scheduleDailyAt: string | null;
  scheduleCron: string | null;
  scheduleTz: string;
  scheduleLastRun: Date | null;
  scheduleNextRun: Date | null;
  keepLast: number | null;
  keepDays: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A project with its latest build, for lists. */
export interface ProjectSummary extends Project {
  lastBuildId: number | null;
  lastBuildState: BuildState | null;
  lastBuildFinishedAt: Date | null;
}

export interface ProjectInput {
  name: string;
  title?: string;
  description?: string;
  configUrl: string;
  configRef?: string;
  architecture: string;
  suite?: string;
  extraEnv?: Record<string, string>;
  priority?: number;
  private?: boolean;
  active?: boolean;
  scheduleDailyAt?: string | null;
  scheduleCron?: string | null;
  scheduleTz?: string;
  keepLast?: number | null;
  keepDays?: number | null;
}
export type ProjectPatch = Partial<ProjectInput>;

export class ProjectExistsError extends Error {
  constructor(readonly projectName: string) {
    super(`A project named ${projectName} already exists; choose another name.`);
    this.name = "ProjectExistsError";
  }
}

export class ProjectNotFoundError extends Error {
  constructor(readonly project: number | string) {
    super(typeof project === "number" ? `There is no project with id ${project}.` : `There is no project named ${project}.`);
    this.name = "ProjectNotFoundError";
  }
}

export const PROJECT_COLUMNS = (a: string) => `
  ${a}.id, ${a}.name, ${a}.title, ${a}.description, ${a}.config_url AS "configUrl", ${a}.config_ref AS "configRef",
  ${a}.architecture, ${a}.suite, ${a}.extra_env AS "extraEnv", ${a}.priority, ${a}.active, ${a}.private,
  to_char(${a}.schedule_daily_at, 'HH24:MI') AS "scheduleDailyAt", ${a}.schedule_cron AS "scheduleCron",
  ${a}.schedule_tz AS "scheduleTz", ${a}.schedule_last_run AS "scheduleLastRun", ${a}.schedule_next_run AS "scheduleNextRun",
  ${a}.keep_last AS "keepLast", ${a}.keep_days AS "keepDays", ${a}.created_at AS "createdAt", ${a}.updated_at AS "updatedAt"`;

/** camelCase field → column, for inserts and patches. */
const FIELD_COLUMNS: Record<keyof ProjectInput, string> = {
  name: "name",
  title: "title",
  description: "description",
  configUrl: "config_url",
  configRef: "config_ref",
  architecture: "architecture",
  suite: "suite",
  extraEnv: "extra_env",
  priority: "priority",
  private: "private",
  active: "active",
  scheduleDailyAt: "schedule_daily_at",
  scheduleCron: "schedule_cron",
  scheduleTz: "schedule_tz",
  keepLast: "keep_last",
  keepDays: "keep_days",
};

function columnValue(field: keyof ProjectInput, value: unknown): unknown {
  if (field === "extraEnv") return JSON.stringify(value ?? {});
  return value;
}

export async function createProject(db: Queryable, input: ProjectInput): Promise<Project> {
  const cols: string[] = [];
  const params: unknown[] = [];
  for (const field of Object.keys(FIELD_COLUMNS) as (keyof ProjectInput)[]) {
    const value = input[field];
    if (value === undefined) continue;
    cols.push(FIELD_COLUMNS[field]);
    params.push(columnValue(field, value));
  }
  let row: Project;
  try {
    const { rows } = await db.query<Project>(
      `INSERT INTO projects AS p (${cols.join(", ")}) VALUES (${params.map((_, i) => `$${i + 1}`).join(", ")})
       RETURNING ${PROJECT_COLUMNS("p")}`,
      params,
    );
    row = rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err, "projects_name_key")) throw new ProjectExistsError(input.name);
    throw err;
  }
  await notify(db, Channel.projects, { id: row.id });
  return row;
}

/** Changes the given fields (undefined = unchanged; null clears a nullable one). Null if no such project. */
export async function updateProject(db: Queryable, id: number, patch: ProjectPatch): Promise<Project | null> {
  if (!isValidId(id)) return null;
  const sets: string[] = [];
  const params: unknown[] = [id];
  for (const field of Object.keys(FIELD_COLUMNS) as (keyof ProjectInput)[]) {
    const value = patch[field];
    if (value === undefined) continue;
    params.push(columnValue(field, value));
    sets.push(`${FIELD_COLUMNS[field]} = $${params.length}`);
  }
  // Setting one kind of schedule clears the other, so the CHECK that forbids both holds.
  if (patch.scheduleDailyAt != null && patch.scheduleCron === undefined) sets.push("schedule_cron = NULL");
  if (patch.scheduleCron != null && patch.scheduleDailyAt === undefined) sets.push("schedule_daily_at = NULL");
  sets.push("updated_at = now()");
  let row: Project | undefined;
  try {
    const { rows } = await db.query<Project>(
      `UPDATE projects AS p SET ${sets.join(", ")} WHERE p.id = $1 RETURNING ${PROJECT_COLUMNS("p")}`,
      params,
    );
    row = rows[0];
  } catch (err) {
    if (isUniqueViolation(err, "projects_name_key")) throw new ProjectExistsError(String(patch.name));
    throw err;
  }
  if (!row) return null;
  await notify(db, Channel.projects, { id: row.id });
  return row;
}

/** The project whose `key` column is `value`, or null if there is none or the viewer may not see it (without a viewer: no check). */
async function getProjectBy(db: Queryable, key: "id" | "name", value: number | string, viewer?: Viewer): Promise<Project | null> {
  const params: unknown[] = [value];
  const visible = viewer ? projectVisibilitySql("p", viewer, params) : "TRUE";
  const { rows } = await db.query<Project>(`SELECT ${PROJECT_COLUMNS("p")} FROM projects p WHERE p.${key} = $1 AND ${visible}`, params);
  return rows[0] ?? null;
}

export async function getProjectById(db: Queryable, id: number, viewer?: Viewer): Promise<Project | null> {
  return isValidId(id) ? getProjectBy(db, "id", id, viewer) : null;
}

/** The project, or null if there is none or the viewer may not see it (without a viewer: no check). */
export async function getProjectByName(db: Queryable, name: string, viewer?: Viewer): Promise<Project | null> {
  return isLookupName(name) ? getProjectBy(db, "name", name, viewer) : null;
}

/** Projects the viewer may see, by name, with their latest build. */
export async function listProjects(
  db: Queryable,
  viewer: Viewer,
  options: { includeInactive?: boolean } = {},
): Promise<ProjectSummary[]> {
  const params: unknown[] = [];
  const visible = projectVisibilitySql("p", viewer, params);
  const active = options.includeInactive === false ? "AND p.active" : "";
  const { rows } = await db.query<ProjectSummary>(
    `SELECT ${PROJECT_COLUMNS("p")}, lb.id AS "lastBuildId", lb.state AS "lastBuildState", lb.finished_at AS "lastBuildFinishedAt"
       FROM projects p
       LEFT JOIN LATERAL (SELECT b.id, b.state, b.finished_at FROM builds b WHERE b.project_id = p.id ORDER BY b.id DESC LIMIT 1) lb ON TRUE
      WHERE ${visible} ${active}
      ORDER BY p.name`,
    params,
  );
  return rows;
}

/** Replaces the member list (one statement, so it is atomic without a transaction). */
export async function setProjectMembers(db: Queryable, projectId: number, userIds: number[]): Promise<void> {
  await db.query(
    `WITH gone AS (DELETE FROM project_members WHERE project_id = $1 AND NOT (user_id = ANY($2::bigint[])))
     INSERT INTO project_members (project_id, user_id)
     SELECT $1, u FROM unnest($2::bigint[]) AS u ON CONFLICT DO NOTHING`,
    [projectId, [...new Set(userIds)]],
  );
  await notify(db, Channel.projects, { id: projectId });
}

export interface ProjectMember {
  userId: number;
  name: string;
  role: Role;
  active: boolean;
}

export async function listProjectMembers(db: Queryable, projectId: number): Promise<ProjectMember[]> {
  const { rows } = await db.query<ProjectMember>(
    `SELECT u.id AS "userId", u.name, u.role, u.active FROM project_members m JOIN users u ON u.id = m.user_id
      WHERE m.project_id = $1 ORDER BY u.name`,
    [projectId],
  );
  return rows;
}

export async function isProjectMember(db: Queryable, projectId: number, userId: number): Promise<boolean> {
  const { rows } = await db.query("SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2", [projectId, userId]);
  return rows.length > 0;
}

/** Active projects with a daily time or a cron expression (for the master's scheduler). */
export async function listScheduledProjects(db: Queryable): Promise<Project[]> {
  const { rows } = await db.query<Project>(
    `SELECT ${PROJECT_COLUMNS("p")} FROM projects p
      WHERE p.active AND (p.schedule_daily_at IS NOT NULL OR p.schedule_cron IS NOT NULL) ORDER BY p.id`,
  );
  return rows;
}

/**
 * Records the scheduler's bookkeeping. No notification: the scheduler itself is the writer,
 * and a notification would wake it to re-read what it just wrote.
 */
export async function setScheduleTimes(db: Queryable, id: number, times: { lastRun?: Date | null; nextRun: Date | null }): Promise<boolean> {
  const params: unknown[] = [id, times.nextRun];
  let set = "schedule_next_run = $2";
  if (times.lastRun !== undefined) {
    params.push(times.lastRun);
    set += ", schedule_last_run = $3";
  }
  const { rowCount } = await db.query(`UPDATE projects SET ${set} WHERE id = $1`, params);
  return (rowCount ?? 0) > 0;
}

/** Stops a project's schedule and new builds; its history stays. True if it was active. */
export async function deactivateProject(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE projects SET active = false, updated_at = now() WHERE id = $1 AND active", [id]);
  if (!rowCount) return false;
  await notify(db, Channel.projects, { id });
  return true;
}
