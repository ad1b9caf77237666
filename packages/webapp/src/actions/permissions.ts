// Who may do what (roles in auth.ts). Private projects do not exist for those who may not see
// them: a lookup answers 404 before any role check could tell them apart.
import {
  getBuild,
  getProjectByName,
  isProjectMember,
  type BuildDetail,
  type Project,
  type Queryable,
} from "@lexbuilder/shared-models/db";
import { PROJECT_NAME_PATTERN } from "@lexbuilder/shared-models/protocol";
import { hasRole, viewerOf, type CurrentUser } from "../auth.js";
import { ActionError } from "./errors.js";

export async function projectVisibleTo(db: Queryable, user: CurrentUser, name: string): Promise<Project> {
  // The name as given, not trimmed: a lookup matches exactly or finds nothing.
  const project = PROJECT_NAME_PATTERN.test(name) ? await getProjectByName(db, name, viewerOf(user)) : null;
  if (!project) throw new ActionError(404, `There is no project named ${name.slice(0, 64)}.`);
  return project;
}

export async function buildVisibleTo(db: Queryable, user: CurrentUser, buildId: number): Promise<BuildDetail> {
  const build = await getBuild(db, buildId, viewerOf(user));
  if (!build) throw new ActionError(404, `There is no build #${buildId}.`);
  return build;
}

export function requireBuilderRole(user: CurrentUser, doing: string): void {
  if (!hasRole(user, "builder")) throw new ActionError(403, `Your role allows reading only; builders and administrators ${doing}.`);
}

export function requireAdmin(user: CurrentUser): void {
  if (user.role !== "admin") throw new ActionError(403, "Only administrators may do this.");
}

/** Admins manage every project; builders the projects they are members of. */
export async function mayManageProject(db: Queryable, user: CurrentUser | undefined, project: Project): Promise<boolean> {
  if (!user) return false;
  if (user.role === "admin") return true;
  if (user.role !== "builder") return false;
  return isProjectMember(db, project.id, user.id);
}

/** The project, if the user may see and manage it (404, then 403). */
export async function projectManagedBy(db: Queryable, user: CurrentUser, name: string): Promise<Project> {
  const project = await projectVisibleTo(db, user, name);
  if (!(await mayManageProject(db, user, project))) throw new ActionError(403, "Only administrators and the project's builder members may edit it.");
  return project;
}
