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
import { keepMaskedSecrets, maskConfigUrl, maskProject } from "../secrets.js";
import { ActionError } from "./errors.js";
import { projectManagedBy, projectVisibleTo, requireAdmin, requireBuilderRole } from "./permissions.js";
import { writeAndAudit } from "./run.js";

/**
 * One sentence for every taken name: whether a private project holds it is not the caller's to
 * learn (nor whether the name is taken at all rather than otherwise unusable).
 */
export function nameNotAvailable(name: string): ActionError {
  return new ActionError(400, `The name ${name.slice(0, 64)} is not available; choose another.`, "name");
}

function nameTaken(err: unknown): never {
  if (err instanceof ProjectExistsError) throw nameNotAvailable(err.projectName);
  throw err;
}

/** A builder who creates a project becomes its member (so they may edit it). */
export async function createProject(ctx: AppContext, user: CurrentUser, input: ProjectInput): Promise<Project> {
  requireBuilderRole(user, "create projects");
  try {
    return await writeAndAudit(ctx, async (db) => {
      const project = await createProjectRow(db, { ...input, active: true });
      if (user.role !== "admin") await setProjectMembersRow(db, project.id, [user.id]);
      await audit(db, user, "project.create", "project", project.id, { name: project.name, configUrl: maskConfigUrl(project.configUrl) });
      return project;
    });
  } catch (err) {
    return nameTaken(err);
  }
}

/** Every field of the project, the schedule included, as the validated form gives it. */
export async function updateProject(ctx: AppContext, user: CurrentUser, input: { projectName: string; project: ProjectInput }): Promise<Project> {
  const before = await projectManagedBy(ctx.pool, user, input.projectName);
  // The edit form (and a client that read the project masked) sends masked secrets back: keep them.
  const { input: v, lostCredentials } = keepMaskedSecrets(input.project, before);
  if (lostCredentials) throw new ActionError(400, "The address changed, so its hidden credentials cannot be kept; type the user and token (or password) again, or remove the ***@.", "configUrl");
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
      await audit(db, user, "project.update", "project", before.id, { name: updated.name, before: projectToForm(maskProject(before)), after: projectToForm(maskProject(updated)) });
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
