// Project actions: create, edit (including the schedule), members. Each checks permission,
// writes the change and its audit row in one transaction, and drops the caches.
import {
  ProjectExistsError,
  createProject as createProjectRow,
  listUsers,
  setProjectMembers as setProjectMembersRow,
  updateProject as updateProjectRow,
  type Project,
  type ProjectInput,
} from "@lexbuilder/shared-models/db";
import type { CurrentUser } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { projectToForm } from "../project-form.js";
import { ActionError } from "./errors.js";
import { projectManagedBy, projectVisibleTo, requireAdmin, requireBuilderRole } from "./permissions.js";
import { writeAndAudit } from "./run.js";

function nameTaken(err: unknown): never {
  if (err instanceof ProjectExistsError) throw new ActionError(400, err.message, "name");
  throw err;
}

/** A builder who creates a project becomes its member (so they may edit it). */
export async function createProject(ctx: AppContext, user: CurrentUser, input: ProjectInput): Promise<Project> {
  requireBuilderRole(user, "create projects");
  try {
    return await writeAndAudit(ctx, async (db) => {
      const project = await createProjectRow(db, { ...input, active: true });
      if (user.role !== "admin") await setProjectMembersRow(db, project.id, [user.id]);
      await audit(db, user, "project.create", "project", project.id, { name: project.name, configUrl: project.configUrl });
      return project;
    });
  } catch (err) {
    return nameTaken(err);
  }
}

/** Every field of the project, the schedule included, as the validated form gives it. */
export async function updateProject(ctx: AppContext, user: CurrentUser, input: { projectName: string; project: ProjectInput }): Promise<Project> {
  const before = await projectManagedBy(ctx.pool, user, input.projectName);
  const v = input.project;
  try {
    return await writeAndAudit(ctx, async (db) => {
      const updated = await updateProjectRow(db, before.id, {
        ...v,
        scheduleDailyAt: v.scheduleDailyAt ?? null,
        scheduleCron: v.scheduleCron ?? null,
        keepLast: v.keepLast ?? null,
        keepDays: v.keepDays ?? null,
      });
      if (!updated) throw new ActionError(404, `There is no project named ${before.name}.`);
      await audit(db, user, "project.update", "project", before.id, { name: updated.name, before: projectToForm(before), after: projectToForm(updated) });
      return updated;
    });
  } catch (err) {
    return nameTaken(err);
  }
}

/** Admins set who belongs to a project; ids of unknown users are left out. */
export async function setProjectMembers(ctx: AppContext, user: CurrentUser, input: { projectName: string; memberIds: number[] }): Promise<{ project: Project; members: number[] }> {
  requireAdmin(user);
  const project = await projectVisibleTo(ctx.pool, user, input.projectName);
  const known = new Set((await listUsers(ctx.pool)).map((u) => u.id));
  const members = [...new Set(input.memberIds)].filter((id) => known.has(id));
  await writeAndAudit(ctx, async (db) => {
    await setProjectMembersRow(db, project.id, members);
    await audit(db, user, "project.members", "project", project.id, { name: project.name, members });
  });
  return { project, members };
}
