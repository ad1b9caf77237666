// Projects: list, create, edit, detail (history, schedule, build buttons), members.
import { Router, type Request } from "express";
import {
  DuplicateBuildError,
  ProjectExistsError,
  ProjectInactiveError,
  createProject,
  getProjectByName,
  isProjectMember,
  listBuilds,
  listProjectMembers,
  listProjects,
  listUsers,
  nextRunAfter,
  requestBuild,
  setProjectMembers,
  updateProject,
  validateBuildRequest,
  validateProjectInput,
  type Project,
  type Viewer,
} from "@lexbuilder/shared-models";
import { checkCsrf, hasRole, HttpError, requireLogin, requireRole, type CurrentUser } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { checkbox, field, flash, me, viewerOf } from "./util.js";
import { servePage, type PageSpec } from "../cache/pages.js";

/** The form as typed, so a refused form comes back exactly as the user left it. */
export interface ProjectForm {
  name: string;
  title: string;
  description: string;
  configUrl: string;
  configRef: string;
  architecture: string;
  suite: string;
  extraEnv: string;
  priority: string;
  private: boolean;
  active: boolean;
  scheduleKind: "none" | "daily" | "cron";
  scheduleDailyAt: string;
  scheduleCron: string;
  scheduleTz: string;
  keepLast: string;
  keepDays: string;
}

export function emptyProjectForm(tz: string): ProjectForm {
  return {
    name: "",
    title: "",
    description: "",
    configUrl: "",
    configRef: "main",
    architecture: "amd64",
    suite: "trixie",
    extraEnv: "",
    priority: "0",
    private: false,
    active: true,
    scheduleKind: "none",
    scheduleDailyAt: "",
    scheduleCron: "",
    scheduleTz: tz,
    keepLast: "",
    keepDays: "",
  };
}

export function projectToForm(p: Project): ProjectForm {
  return {
    name: p.name,
    title: p.title,
    description: p.description,
    configUrl: p.configUrl,
    configRef: p.configRef,
    architecture: p.architecture,
    suite: p.suite,
    extraEnv: Object.entries(p.extraEnv ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    priority: String(p.priority),
    private: p.private,
    active: p.active,
    scheduleKind: p.scheduleCron ? "cron" : p.scheduleDailyAt ? "daily" : "none",
    scheduleDailyAt: p.scheduleDailyAt ?? "",
    scheduleCron: p.scheduleCron ?? "",
    scheduleTz: p.scheduleTz,
    keepLast: p.keepLast === null ? "" : String(p.keepLast),
    keepDays: p.keepDays === null ? "" : String(p.keepDays),
  };
}

export function readProjectForm(body: unknown): ProjectForm {
  const kind = field(body, "scheduleKind", 10);
  return {
    name: field(body, "name", 200),
    title: field(body, "title", 1000),
    description: field(body, "description", 20_000),
    configUrl: field(body, "configUrl", 4000),
    configRef: field(body, "configRef", 1000),
    architecture: field(body, "architecture", 100),
    suite: field(body, "suite", 100),
    extraEnv: field(body, "extraEnv", 20_000),
    priority: field(body, "priority", 20),
    private: checkbox(body, "private"),
    active: checkbox(body, "active"),
    scheduleKind: kind === "daily" || kind === "cron" ? kind : "none",
    scheduleDailyAt: field(body, "scheduleDailyAt", 100),
    scheduleCron: field(body, "scheduleCron", 200),
    scheduleTz: field(body, "scheduleTz", 100),
    keepLast: field(body, "keepLast", 20),
    keepDays: field(body, "keepDays", 20),
  };
}

/** Form → the raw input validateProjectInput checks (it parses the NAME=value lines itself). */
export function formToInput(form: ProjectForm): { raw: Record<string, unknown>; errors: Record<string, string> } {
  const errors: Record<string, string> = {};
  const raw: Record<string, unknown> = {
    name: form.name,
    title: form.title,
    description: form.description,
    configUrl: form.configUrl,
    configRef: form.configRef,
    architecture: form.architecture,
    suite: form.suite,
    extraEnv: form.extraEnv,
    priority: form.priority,
    private: form.private,
    active: form.active,
    scheduleDailyAt: form.scheduleKind === "daily" ? form.scheduleDailyAt : "",
    scheduleCron: form.scheduleKind === "cron" ? form.scheduleCron : "",
    scheduleTz: form.scheduleTz,
    keepLast: form.keepLast,
    keepDays: form.keepDays,
  };
  if (form.scheduleKind === "daily" && !form.scheduleDailyAt) errors.scheduleDailyAt = "Give the time of day for the daily build, as HH:MM.";
  if (form.scheduleKind === "cron" && !form.scheduleCron) errors.scheduleCron = "Give a cron expression, for example 30 2 * * 1-5.";
  return { raw, errors };
}

export function nextRunOf(p: Project, now = new Date()): Date | null {
  try {
    if (!p.active) return null;
    if (p.scheduleCron) return nextRunAfter({ kind: "cron", expression: p.scheduleCron }, p.scheduleTz, now);
    if (p.scheduleDailyAt) return nextRunAfter({ kind: "daily", at: p.scheduleDailyAt }, p.scheduleTz, now);
  } catch {
    return null;
  }
  return null;
}

/** Admins manage every project; builders the projects they are members of. */
export async function canManageProject(ctx: AppContext, user: CurrentUser | undefined, project: Project): Promise<boolean> {
  if (!user) return false;
  if (user.role === "admin") return true;
  if (user.role !== "builder") return false;
  return isProjectMember(ctx.pool, project.id, user.id);
}

export async function visibleProject(ctx: AppContext, req: Request, name: unknown): Promise<Project> {
  const viewer: Viewer = viewerOf(req);
  const n = typeof name === "string" ? name : "";
  const project = /^[a-z0-9][a-z0-9-]{0,62}$/.test(n) ? await getProjectByName(ctx.pool, n, viewer) : null;
  if (!project) throw new HttpError(404, `There is no project named ${n.slice(0, 64)}.`);
  return project;
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
    const user = me(req);
    const form = readProjectForm(req.body);
    form.active = true;
    const { raw, errors } = formToInput(form);
    const checked = validateProjectInput(raw, { allowedSchemes: ctx.config.allowedConfigSchemes });
    const allErrors = { ...(checked.ok ? {} : checked.errors), ...errors };
    if (!checked.ok || Object.keys(errors).length) {
      res.status(400).render("project-form", { title: "New project", form, errors: allErrors, project: null });
      return;
    }
    try {
      const project = await createProject(ctx.pool, checked.value);
      if (user.role !== "admin") await setProjectMembers(ctx.pool, project.id, [user.id]);
      ctx.caches?.dataChanged();
      await audit(ctx, user, "project.create", "project", project.id, { name: project.name, configUrl: project.configUrl });
      flash(req, "ok", `Project ${project.name} created.`);
      res.redirect(303, `/projects/${encodeURIComponent(project.name)}`);
    } catch (err) {
      if (err instanceof ProjectExistsError) {
        res.status(400).render("project-form", { title: "New project", form, errors: { name: err.message }, project: null });
        return;
      }
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
        project,
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
    const project = await visibleProject(ctx, req, req.params.name);
    if (!(await canManageProject(ctx, req.user, project))) throw new HttpError(403, "Only administrators and the project's builder members may edit it.");
    res.render("project-form", { title: `Edit ${project.name}`, form: projectToForm(project), errors: {}, project });
  });

  r.post("/projects/:name", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const project = await visibleProject(ctx, req, req.params.name);
    if (!(await canManageProject(ctx, user, project))) throw new HttpError(403, "Only administrators and the project's builder members may edit it.");
    const form = readProjectForm(req.body);
    const { raw, errors } = formToInput(form);
    const checked = validateProjectInput(raw, { allowedSchemes: ctx.config.allowedConfigSchemes });
    const allErrors = { ...(checked.ok ? {} : checked.errors), ...errors };
    if (!checked.ok || Object.keys(errors).length) {
      res.status(400).render("project-form", { title: `Edit ${project.name}`, form, errors: allErrors, project });
      return;
    }
    try {
      const v = checked.value;
      const updated = await updateProject(ctx.pool, project.id, {
        ...v,
        scheduleDailyAt: v.scheduleDailyAt ?? null,
        scheduleCron: v.scheduleCron ?? null,
        keepLast: v.keepLast ?? null,
        keepDays: v.keepDays ?? null,
      });
      ctx.caches?.dataChanged();
      if (!updated) throw new HttpError(404, `There is no project named ${project.name}.`);
      await audit(ctx, user, "project.update", "project", project.id, { name: updated.name, before: projectToForm(project), after: projectToForm(updated) });
      flash(req, "ok", `Project ${updated.name} saved.`);
      res.redirect(303, `/projects/${encodeURIComponent(updated.name)}`);
    } catch (err) {
      if (err instanceof ProjectExistsError) {
        res.status(400).render("project-form", { title: `Edit ${project.name}`, form, errors: { name: err.message }, project });
        return;
      }
      throw err;
    }
  });

  r.post("/projects/:name/members", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const project = await visibleProject(ctx, req, req.params.name);
    const raw = (req.body as Record<string, unknown>).member;
    const ids = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw])
      .filter((x): x is string => typeof x === "string" && /^[1-9][0-9]{0,14}$/.test(x))
      .map(Number);
    const known = new Set((await listUsers(ctx.pool)).map((u) => u.id));
    const members = ids.filter((id) => known.has(id));
    await setProjectMembers(ctx.pool, project.id, members);
    ctx.caches?.dataChanged();
    await audit(ctx, user, "project.members", "project", project.id, { name: project.name, members });
    flash(req, "ok", `Members of ${project.name} saved.`);
    res.redirect(303, `/projects/${encodeURIComponent(project.name)}#members`);
  });

  r.post("/projects/:name/builds", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const project = await visibleProject(ctx, req, req.params.name);
    if (!hasRole(user, "builder")) throw new HttpError(403, "Your role allows reading only; ask an administrator for the builder role.");
    const milestoneText = field(req.body, "milestone", 200);
    const configRefText = field(req.body, "configRef", 300);
    const buildForm = { milestone: milestoneText, configRef: configRefText };
    const checked = validateBuildRequest({ milestone: milestoneText, configRef: configRefText });
    if (!checked.ok) return renderProject(req, res, project, 400, Object.values(checked.errors).join(" "), buildForm);
    const { milestone, configRef } = checked.value;
    try {
      const build = await requestBuild(ctx.pool, {
        projectId: project.id,
        reason: milestone ? "milestone" : "manual",
        milestone: milestone || null,
        configRef: configRef || null,
        requestedBy: user.id,
      });
      ctx.caches?.dataChanged();
      await audit(ctx, user, "build.request", "build", build.id, { project: project.name, milestone: milestone || null, configRef: build.configRef });
      flash(req, "ok", `Build #${build.id} of ${project.name} is queued.`);
      res.redirect(303, `/builds/${build.id}`);
    } catch (err) {
      if (err instanceof DuplicateBuildError || err instanceof ProjectInactiveError) {
        return renderProject(req, res, project, 409, err.message, buildForm);
      }
      throw err;
    }
  });
  return r;
}
