// The JSON API: `Authorization: Bearer <personal token>`, the caller's permissions,
// errors as {error: "sentence"} with 400, 401, 403, 404 or 409 (respond.ts answers them).
// Changes go through actions/, as the console's forms do.
import { createHash } from "node:crypto";
import express, { Router, type NextFunction, type Request, type Response } from "express";
import { toApiBuild, toApiBuildListItem, toApiProject } from "@lexbuilder/shared-models/api-shapes";
import {
  findUserByApiToken,
  getManifest,
  getProjectByName,
  listArtifacts,
  listBuilds,
  listMemberProjectIds,
  listProjects,
  type Project,
} from "@lexbuilder/shared-models/db";
import { PROJECT_NAME_PATTERN } from "@lexbuilder/shared-models/protocol";
import {
  checkBuildState,
  checkIdempotencyKey,
  checkLogOffset,
  checkMilestone,
  type Checked,
} from "@lexbuilder/shared-models/rules";
import { HttpError } from "../auth.js";
import { cancelBuild, requestBuild, retryBuild } from "../actions/builds.js";
import { mayManageProject, projectVisibleTo, requireBuilderRole } from "../actions/permissions.js";
import { maskProject } from "../secrets.js";
import type { AppContext } from "../context.js";
import { sendArtifact, sendFullLog, visibleBuild } from "./builds.js";
import { nextRunOf } from "./projects.js";
import { idOr404, me, parseId, viewerOf } from "./util.js";
import { serveJson } from "../cache/pages.js";
import { refuseUnstorableText } from "../text-guard.js";
import { notificationsApi } from "./api-notifications.js";

/**
 * The API's project, with the next run computed from the schedule (the master may not have
 * stored it yet); its secrets masked unless the caller manages it.
 */
function apiProject(p: Project, manages: boolean) {
  const out = toApiProject(manages ? p : maskProject(p));
  const next = nextRunOf(p);
  out.schedule.nextRun = next ? next.toISOString() : null;
  return out;
}

/** The rule's value, or its sentence as a 400 answer. */
function refuseWith400<T>(checked: Checked<T>): T {
  if (checked.error !== undefined) throw new HttpError(400, checked.error);
  return checked.value;
}

function str(q: unknown, name: string): string | undefined {
  const v = (q as Record<string, unknown>)[name];
  return typeof v === "string" ? v : undefined;
}

export function apiRouter(ctx: AppContext): Router {
  const r = Router();

  r.use(async (req: Request, _res: Response, next: NextFunction) => {
    try {
      const header = req.get("authorization") ?? "";
      const m = /^Bearer ([^\s]+)$/i.exec(header.trim());
      if (!m) throw new HttpError(401, "Send a personal API token as `Authorization: Bearer <token>`; create one on your account page.");
      const token = m[1]!;
      // Owners of tokens are cached (web-caches.ts): revoking a token or changing its user empties it.
      const user = ctx.caches
        ? await ctx.caches.tokens.get(createHash("sha256").update(token).digest("hex"), () => findUserByApiToken(ctx.pool, token), (u) => (u ? {} : null))
        : await findUserByApiToken(ctx.pool, token);
      if (!user) throw new HttpError(401, "This API token is unknown, revoked, or belongs to a deactivated user.");
      req.user = { id: user.id, name: user.name, role: user.role };
      req.authVia = "token";
      next();
    } catch (err) {
      next(err);
    }
  });
  r.use(express.json({ limit: "64kb", strict: true }));
  r.use(refuseUnstorableText);
  r.use(notificationsApi(ctx));

  const buildOf = async (req: Request) => {
    const build = await visibleBuild(ctx, req, req.params.id);
    return build;
  };

  r.get("/projects", async (req, res) => {
    const user = me(req);
    const projects = await listProjects(ctx.pool, viewerOf(req));
    const memberOf = user.role === "builder" ? await listMemberProjectIds(ctx.pool, user.id) : new Set<number>();
    res.json(projects.map((p) => apiProject(p, user.role === "admin" || memberOf.has(p.id))));
  });

  r.get("/projects/:name", async (req, res) => {
    const project = await projectVisibleTo(ctx.pool, me(req), String(req.params.name));
    res.json(apiProject(project, await mayManageProject(ctx.pool, me(req), project)));
  });

  r.post("/projects/:name/builds", async (req, res) => {
    const user = me(req);
    // Who may ask is answered before what they sent is judged (404, then 403, then 400).
    const project = await projectVisibleTo(ctx.pool, user, String(req.params.name));
    requireBuilderRole(user, "request builds");
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "The body must be a JSON object like {\"milestone\": \"1.0\", \"configRef\": \"v1.0\"}.");
    for (const key of Object.keys(body)) {
      if (key !== "milestone" && key !== "configRef") throw new HttpError(400, `Unknown field "${key.slice(0, 40)}"; only milestone and configRef are accepted.`);
    }
    const { milestone, configRef } = body;
    // JSON types are the API's own question; what a milestone may be is the rule's.
    if (milestone !== undefined && milestone !== null) {
      if (typeof milestone !== "string") throw new HttpError(400, "milestone must be a string.");
      refuseWith400(checkMilestone(milestone));
    }
    if (configRef !== undefined && configRef !== null && typeof configRef !== "string") throw new HttpError(400, "configRef must be a string.");
    const idempotencyKey = req.get("idempotency-key");
    if (idempotencyKey !== undefined) refuseWith400(checkIdempotencyKey(idempotencyKey));
    const { build, replayed } = await requestBuild(ctx, user, { projectName: project.name, milestone: milestone ?? null, configRef: configRef ?? null, idempotencyKey, via: "api" });
    if (replayed) res.status(200).set("Idempotent-Replayed", "true");
    else res.status(201);
    res.location(`/api/v1/builds/${build.id}`).json({ id: build.id, state: build.state });
  });

  r.get("/builds", async (req, res) => {
    const viewer = viewerOf(req);
    const projectName = str(req.query, "project");
    const stateText = str(req.query, "state");
    const limitText = str(req.query, "limit");
    const beforeText = str(req.query, "before");
    let projectId: number | undefined;
    if (projectName) {
      const project = PROJECT_NAME_PATTERN.test(projectName) ? await getProjectByName(ctx.pool, projectName, viewer) : null;
      if (!project) throw new HttpError(404, `There is no project named ${projectName.slice(0, 64)}.`);
      projectId = project.id;
    }
    // Matched ignoring case, as in the console and lexbuilder-admin; answers spell states in upper case.
    const state = stateText ? refuseWith400(checkBuildState(stateText)) : undefined;
    let limit = 50;
    if (limitText !== undefined) {
      if (!/^[0-9]{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 200) throw new HttpError(400, "limit must be a whole number from 1 to 200.");
      limit = Number(limitText);
    }
    let before: number | undefined;
    if (beforeText !== undefined) {
      const b = parseId(beforeText);
      if (b === null) throw new HttpError(400, "before must be a build id.");
      before = b;
    }
    await serveJson(ctx, req, res, JSON.stringify(["builds", projectId ?? null, state ?? null, limit, before ?? null]), async () => {
      const builds = await listBuilds(ctx.pool, { viewer, projectId, state, limit, before });
      return builds.map((b) => toApiBuildListItem(b));
    });
  });

  r.get("/builds/:id", async (req, res) => {
    const build = await buildOf(req);
    const artifacts = await listArtifacts(ctx.pool, build.id);
    res.json(toApiBuild(build, artifacts));
  });

  r.post("/builds/:id/cancel", async (req, res) => {
    const { build, state } = await cancelBuild(ctx, me(req), { buildId: idOr404(req.params.id, "build"), via: "api" });
    res.json({ id: build.id, state });
  });

  r.post("/builds/:id/retry", async (req, res) => {
    const { build, retry } = await retryBuild(ctx, me(req), { buildId: idOr404(req.params.id, "build"), via: "api" });
    res.status(201).location(`/api/v1/builds/${retry.id}`).json({ id: retry.id, state: retry.state, retryOf: build.id });
  });

  r.get("/builds/:id/log", async (req, res) => {
    const build = await buildOf(req);
    const offset = refuseWith400(checkLogOffset(req.query.offset));
    res.set("X-Log-Size", String(build.logSize));
    res.set("X-Build-State", build.state);
    // The API's offsets count stored bytes: its log is the original, escapes included.
    await sendFullLog(ctx, res, build, offset, { attachment: false, raw: true });
  });

  r.get("/builds/:id/manifest", async (req, res) => {
    const build = await buildOf(req);
    const manifest = await getManifest(ctx.pool, build.id);
    res.json(manifest.map((m) => ({ package: m.package, version: m.version })));
  });

  r.get("/artifacts/:id", async (req, res) => {
    await sendArtifact(ctx, req, res, req.params.id);
  });

  r.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, `There is no API endpoint ${req.method} ${req.baseUrl}${req.path}.`));
  });
  return r;
}
