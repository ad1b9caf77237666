// The JSON API (DESIGN.md): `Authorization: Bearer <personal token>`, the caller's permissions,
// errors as {error: "sentence"} with 400, 401, 403, 404 or 409.
import { createHash } from "node:crypto";
import express, { Router, type NextFunction, type Request, type Response } from "express";
import {
  BUILD_STATES,
  BuildStateError,
  DuplicateBuildError,
  getBuild,
  IdempotencyKeyUsedError,
  IDEMPOTENCY_KEY_PATTERN,
  ProjectInactiveError,
  cancelBuild,
  findUserByApiToken,
  getManifest,
  getProjectByName,
  listArtifacts,
  listBuilds,
  listProjects,
  requestBuild,
  retryBuild,
  toApiBuild,
  toApiBuildListItem,
  toApiProject,
  validateBuildRequest,
  type Project,
  type BuildState,
} from "@lexbuilder/shared-models";
import { hasRole, HttpError } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { sendArtifact, sendFullLog, visibleBuild } from "./builds.js";
import { nextRunOf } from "./projects.js";
import { me, parseId, viewerOf } from "./util.js";
import { serveJson } from "../cache/pages.js";
import { requestLog } from "../access-log.js";
import { refuseUnstorableText } from "../text-guard.js";

/** The API's project, with the next run computed from the schedule (the master may not have stored it yet). */
function apiProject(p: Project) {
  const out = toApiProject(p);
  const next = nextRunOf(p);
  out.schedule.nextRun = next ? next.toISOString() : null;
  return out;
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

  const buildOf = async (req: Request) => {
    const build = await visibleBuild(ctx, req, req.params.id);
    return build;
  };
  const requireBuilder = (req: Request) => {
    if (!hasRole(req.user, "builder")) throw new HttpError(403, "Your role allows reading only; builders and administrators change builds.");
  };

  r.get("/projects", async (req, res) => {
    const projects = await listProjects(ctx.pool, viewerOf(req));
    res.json(projects.map((p) => apiProject(p)));
  });

  r.get("/projects/:name", async (req, res) => {
    const name = String(req.params.name);
    const project = /^[a-z0-9][a-z0-9-]{0,62}$/.test(name) ? await getProjectByName(ctx.pool, name, viewerOf(req)) : null;
    if (!project) throw new HttpError(404, `There is no project named ${name.slice(0, 64)}.`);
    res.json(apiProject(project));
  });

  r.post("/projects/:name/builds", async (req, res) => {
    const user = me(req);
    const name = String(req.params.name);
    const project = /^[a-z0-9][a-z0-9-]{0,62}$/.test(name) ? await getProjectByName(ctx.pool, name, viewerOf(req)) : null;
    if (!project) throw new HttpError(404, `There is no project named ${name.slice(0, 64)}.`);
    requireBuilder(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "The body must be a JSON object like {\"milestone\": \"1.0\", \"configRef\": \"v1.0\"}.");
    for (const key of Object.keys(body)) {
      if (key !== "milestone" && key !== "configRef") throw new HttpError(400, `Unknown field "${key.slice(0, 40)}"; only milestone and configRef are accepted.`);
    }
    const { milestone, configRef } = body;
    if (milestone !== undefined && milestone !== null && (typeof milestone !== "string" || milestone.trim().length < 1 || milestone.length > 100)) {
      throw new HttpError(400, "milestone must be a name of 1 to 100 characters.");
    }
    if (configRef !== undefined && configRef !== null && typeof configRef !== "string") throw new HttpError(400, "configRef must be a string.");
    const checked = validateBuildRequest({ milestone: milestone ?? undefined, configRef: configRef ?? undefined });
    if (!checked.ok) throw new HttpError(400, Object.values(checked.errors).join(" "));
    const idempotencyKey = req.get("idempotency-key");
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
      throw new HttpError(400, "The Idempotency-Key header must be 1 to 200 printable ASCII characters without spaces, e.g. a UUID.");
    }
    try {
      const build = await requestBuild(ctx.pool, {
        projectId: project.id,
        reason: checked.value.milestone ? "milestone" : "api",
        milestone: checked.value.milestone,
        configRef: checked.value.configRef,
        requestedBy: user.id,
        idempotencyKey,
      });
      await audit(ctx, user, "build.request", "build", build.id, { project: project.name, milestone: milestone ?? null, configRef: build.configRef, via: "api" });
      res.status(201).location(`/api/v1/builds/${build.id}`).json({ id: build.id, state: build.state });
    } catch (err) {
      if (err instanceof IdempotencyKeyUsedError) {
        // The same request again (its first answer was lost): the first build, not a second one.
        const first = await getBuild(ctx.pool, err.existingBuildId);
        const sameRequest =
          first !== null &&
          first.projectId === project.id &&
          (first.milestone ?? null) === (checked.value.milestone ?? null) &&
          first.configRef === (checked.value.configRef ?? project.configRef);
        if (!sameRequest) {
          throw new HttpError(422, "This Idempotency-Key was already used for a different build request; send a new key for a new request.");
        }
        res.status(200).set("Idempotent-Replayed", "true").location(`/api/v1/builds/${first.id}`).json({ id: first.id, state: first.state });
        return;
      }
      if (err instanceof DuplicateBuildError) throw new HttpError(409, err.message);
      if (err instanceof ProjectInactiveError) throw new HttpError(409, err.message);
      throw err;
    }
  });

  r.get("/builds", async (req, res) => {
    const viewer = viewerOf(req);
    const projectName = str(req.query, "project");
    const state = str(req.query, "state");
    const limitText = str(req.query, "limit");
    const beforeText = str(req.query, "before");
    let projectId: number | undefined;
    if (projectName) {
      const project = /^[a-z0-9][a-z0-9-]{0,62}$/.test(projectName) ? await getProjectByName(ctx.pool, projectName, viewer) : null;
      if (!project) throw new HttpError(404, `There is no project named ${projectName.slice(0, 64)}.`);
      projectId = project.id;
    }
    if (state && !BUILD_STATES.includes(state as BuildState)) throw new HttpError(400, `state must be one of ${BUILD_STATES.join(", ")}.`);
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
      const builds = await listBuilds(ctx.pool, { viewer, projectId, state: (state || undefined) as BuildState | undefined, limit, before });
      return builds.map((b) => toApiBuildListItem(b));
    });
  });

  r.get("/builds/:id", async (req, res) => {
    const build = await buildOf(req);
    const artifacts = await listArtifacts(ctx.pool, build.id);
    res.json(toApiBuild(build, artifacts));
  });

  r.post("/builds/:id/cancel", async (req, res) => {
    const user = me(req);
    const build = await buildOf(req);
    requireBuilder(req);
    try {
      const { state } = await cancelBuild(ctx.pool, build.id);
      await audit(ctx, user, "build.cancel", "build", build.id, { project: build.projectName, from: build.state, to: state, via: "api" });
      res.json({ id: build.id, state });
    } catch (err) {
      if (err instanceof BuildStateError) throw new HttpError(409, err.message);
      throw err;
    }
  });

  r.post("/builds/:id/retry", async (req, res) => {
    const user = me(req);
    const build = await buildOf(req);
    requireBuilder(req);
    try {
      const retry = await retryBuild(ctx.pool, build.id, user.id);
      await audit(ctx, user, "build.retry", "build", retry.id, { project: build.projectName, retryOf: build.id, via: "api" });
      res.status(201).location(`/api/v1/builds/${retry.id}`).json({ id: retry.id, state: retry.state, retryOf: build.id });
    } catch (err) {
      if (err instanceof BuildStateError || err instanceof DuplicateBuildError || err instanceof ProjectInactiveError) throw new HttpError(409, err.message);
      throw err;
    }
  });

  r.get("/builds/:id/log", async (req, res) => {
    const build = await buildOf(req);
    const offsetText = str(req.query, "offset");
    let offset = 0;
    if (offsetText !== undefined) {
      if (!/^[0-9]{1,15}$/.test(offsetText)) throw new HttpError(400, "offset must be a byte offset (a whole number, 0 or more).");
      offset = Number(offsetText);
    }
    res.set("X-Log-Size", String(build.logSize));
    res.set("X-Build-State", build.state);
    await sendFullLog(ctx, res, build, offset, false);
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
  r.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { status?: number; type?: string };
    let status = err instanceof HttpError ? err.status : typeof e?.status === "number" && e.status >= 400 && e.status < 500 ? e.status : 500;
    let message = err instanceof HttpError ? err.message : "Something went wrong on our side; it has been logged. Try again in a moment.";
    if (e?.type === "entity.parse.failed") message = "The body is not valid JSON.";
    else if (e?.type === "entity.too.large") message = "The body is too large.";
    else if (status < 500 && !(err instanceof HttpError)) message = "The request could not be read.";
    if (status >= 500) requestLog(req, ctx.log).error({ err }, "API request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    if (status === 401) res.set("WWW-Authenticate", 'Bearer realm="lexbuilder"');
    if (status < 400) status = 500;
    res.status(status).json({ error: message });
  });
  return r;
}
