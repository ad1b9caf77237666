// Projects: list, create, edit, detail (history, schedule, build buttons), members.
import { Router, type Request } from "express";
import {
  listBuilds,
  listProjectMembers,
  listProjects,
  listUsers,
  type Project,
} from "@lexbuilder/shared-models/db";
import { validateProjectInput } from "@lexbuilder/shared-models/validation";
import { checkCsrf, hasRole, requireLogin, requireRole, type CurrentUser } from "../auth.js";
import type { AppContext } from "../context.js";
import { requestBuild } from "../actions/builds.js";
import { ActionError } from "../actions/errors.js";
import { mayManageProject, projectManagedBy, projectVisibleTo } from "../actions/permissions.js";
import { createProject, setProjectMembers, updateProject } from "../actions/projects.js";
import { emptyProjectForm, formToInput, nextRunOf, projectToForm, readProjectForm, type ProjectForm } from "../project-form.js";
import { seeOther } from "../respond.js";
import { maskProject } from "../secrets.js";
import { field, flash, me, parseId, viewerOf } from "./util.js";
import { servePage, type PageSpec } from "../cache/pages.js";

export { nextRunOf } from "../project-form.js";

/** Admins manage every project; builders the projects they are members of. */
export function canManageProject(ctx: AppContext, user: CurrentUser | undefined, project: Project): Promise<boolean> {
  return mayManageProject(ctx.pool, user, project);
}

/** The form's checked input, or the field errors to show it again with. */
function checkProjectForm(ctx: AppContext, form: ProjectForm) {
  const { raw, errors } = formToInput(form);
  const checked = validateProjectInput(raw, { allowedSchemes: ctx.config.allowedConfigSchemes });
  const allErrors = { ...(checked.ok ? {} : checked.errors), ...errors };
  return checked.ok && !Object.keys(errors).length ? { input: checked.value, errors: null } : { input: null, errors: allErrors };
}

export function visibleProject(ctx: AppContext, req: Request, name: unknown): Promise<Project> {
  return projectVisibleTo(ctx.pool, me(req), typeof name === "string" ? name : "");
}

export function projectsRouter(ctx: AppContext): Router {
  const r = Router();
  const tz = ctx.config.timeZone;

  r.get("/projects", requireLogin, async (req, res) => {
    const projects = await listProjects(ctx.pool, viewerOf(req));
    res.render("projects", { title: "Projects", projects, now: new Date(), nextRunOf });
  });

  r.get("/projects/new", requireLogin, requireRole("builder"), (_req, res) => {
    res.render("project-form", { title: "New project", form: emptyProjectForm(tz), errors: {}, project: null });
  });

  r.post("/projects", requireLogin, checkCsrf, requireRole("builder"), async (req, res) => {
    const form = readProjectForm(req.body);
    form.active = true;
    const again = (status: number, errors: Record<string, string>) => res.status(status).render("project-form", { title: "New project", form, errors, project: null });
    const { input, errors } = checkProjectForm(ctx, form);
    if (!input) return again(400, errors);
    try {
      const project = await createProject(ctx, me(req), input);
      flash(req, "ok", `Project ${project.name} created.`);
      await seeOther(req, res, `/projects/${encodeURIComponent(project.name)}`);
    } catch (err) {
      if (err instanceof ActionError && err.field) return again(err.status, { [err.field]: err.message });
      throw err;
    }
  });

  r.get("/projects/:name", requireLogin, async (req, res) => {
    const name = typeof req.params.name === "string" ? req.params.name : "";
    await servePage(ctx, req, res, `project ${name}`, async () => projectPage(req, await visibleProject(ctx, req, name), 200, null));
  });

  /** The project page; a refused build request shows it again with the error (never cached). */
  async function renderProject(req: Request, res: import("express").Response, project: Project, status: number, buildError: string | null, buildForm: Record<string, string> = {}) {
    await servePage(ctx, req, res, null, () => projectPage(req, project, status, buildError, buildForm));
  }

  async function projectPage(req: Request, project: Project, status: number, buildError: string | null, buildForm: Record<string, string> = {}): Promise<PageSpec> {
    const viewer = viewerOf(req);
    // Independent reads, in parallel: a page waits for one round trip, not five.
    const [builds, members, successes, manage, users] = await Promise.all([
      listBuilds(ctx.pool, { viewer, projectId: project.id, limit: 25 }),
      listProjectMembers(ctx.pool, project.id),
      listBuilds(ctx.pool, { viewer, projectId: project.id, state: "SUCCEEDED", limit: 1 }),
      canManageProject(ctx, req.user, project),
      req.user?.role === "admin" ? listUsers(ctx.pool) : Promise.resolve([]),
    ]);
    const lastSuccess = successes[0] ?? null;
    return {
      view: "project",
      status,
      locals: {
        title: project.title ? `${project.name} — ${project.title}` : project.name,
        // Credentials and variable values are for those who manage the project.
        project: manage ? project : maskProject(project),
        builds,
        members,
        users,
        lastSuccess,
        nextRun: nextRunOf(project),
        manage,
        canBuild: hasRole(req.user, "builder") && project.active,
        buildError,
        buildForm,
      },
    };
  }

  r.get("/projects/:name/edit", requireLogin, async (req, res) => {
    const project = await projectManagedBy(ctx.pool, me(req), String(req.params.name));
    // Secrets stay masked in the form (sent back unchanged, the stored ones are kept).
    res.render("project-form", { title: `Edit ${project.name}`, form: projectToForm(maskProject(project)), errors: {}, project });
  });

  r.post("/projects/:name", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const name = String(req.params.name);
    // Who may edit is checked before the form is: others learn nothing from its errors.
    const project = await projectManagedBy(ctx.pool, user, name);
    const form = readProjectForm(req.body);
    const again = (status: number, errors: Record<string, string>) => res.status(status).render("project-form", { title: `Edit ${project.name}`, form, errors, project });
    const { input, errors } = checkProjectForm(ctx, form);
    if (!input) return again(400, errors);
    try {
      const updated = await updateProject(ctx, user, { projectName: name, project: input });
      flash(req, "ok", `Project ${updated.name} saved.`);
      await seeOther(req, res, `/projects/${encodeURIComponent(updated.name)}`);
    } catch (err) {
      if (err instanceof ActionError && err.field) return again(err.status, { [err.field]: err.message });
      throw err;
    }
  });

  r.post("/projects/:name/members", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const raw = (req.body as Record<string, unknown>).member;
    const memberIds = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw])
      .map(parseId)
      .filter((id): id is number => id !== null);
    const { project } = await setProjectMembers(ctx, me(req), { projectName: String(req.params.name), memberIds });
    flash(req, "ok", `Members of ${project.name} saved.`);
    await seeOther(req, res, `/projects/${encodeURIComponent(project.name)}#members`);
  });

  r.post("/projects/:name/builds", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const project = await visibleProject(ctx, req, req.params.name);
    const buildForm = { milestone: field(req.body, "milestone", 200), configRef: field(req.body, "configRef", 300) };
    try {
      const { build } = await requestBuild(ctx, user, { projectName: project.name, ...buildForm, via: "web" });
      flash(req, "ok", `Build #${build.id} of ${project.name} is queued.`);
      await seeOther(req, res, `/builds/${build.id}`);
    } catch (err) {
      // A refused request shows the project page again, with the error and what was typed.
      if (err instanceof ActionError && (err.status === 400 || err.status === 409)) return renderProject(req, res, project, err.status, err.message, buildForm);
      throw err;
    }
  });
  return r;
}
