// Builds: the filterable list, the detail page (log, files, manifest), cancel, retry,
// downloads by artifact id, the manifest diff, and the live log stream.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { Router, type Request, type Response } from "express";
import {
  countManifest,
  diffManifests,
  getArtifact,
  getBuild,
  getManifest,
  getProjectByName,
  listArtifacts,
  listBuilds,
  readLog,
  type BuildDetail,
} from "@lexbuilder/shared-models/db";
import { PROJECT_NAME_PATTERN } from "@lexbuilder/shared-models/protocol";
import {
  checkBuildReason,
  checkBuildState,
  checkLogOffset,
  checkRange,
  type Checked,
} from "@lexbuilder/shared-models/rules";
import {
  BUILD_REASONS,
  BUILD_STATES,
  TERMINAL_BUILD_STATES,
  canCancel,
  canRetry,
  type BuildReason,
  type BuildState,
} from "@lexbuilder/shared-models/states";
import { checkCsrf, hasRole, HttpError, requireLogin } from "../auth.js";
import { cancelBuild, retryBuild } from "../actions/builds.js";
import { ActionError } from "../actions/errors.js";
import { buildVisibleTo } from "../actions/permissions.js";
import { seeOther } from "../respond.js";
import type { AppContext } from "../context.js";
import { completeUtf8Length, drained, LogTailCache, tailStart } from "../logtext.js";
import { streamLog } from "../live.js";
import { DEFAULT_LIVE_STREAMS_PER_USER, StreamSlots } from "../stream-slots.js";
import { AnsiParser, ansiToHtml, piecesToText } from "../ansi.js";
import { servePage } from "../cache/pages.js";
import { field, flash, idOr404, me, parseId, viewerOf } from "./util.js";

export const LOG_TAIL_BYTES = 64 * 1024;
const LOG_CHUNK_BYTES = 1024 * 1024;

export function visibleBuild(ctx: AppContext, req: Request, id: unknown): Promise<BuildDetail> {
  return buildVisibleTo(ctx.pool, me(req), idOr404(id, "build"));
}

/**
 * Streams the whole log from the database in chunks (constant memory): as stored ("raw", the
 * original bytes), or as text without terminal escapes.
 */
export async function sendFullLog(ctx: AppContext, res: Response, build: BuildDetail, offset: number, options: { attachment: boolean; raw: boolean }): Promise<void> {
  res.type("text/plain; charset=utf-8");
  res.set("Cache-Control", "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  if (options.attachment) res.attachment(`${build.projectName}-build-${build.id}${options.raw ? ".raw" : ""}.log`);
  // Characters and escapes cut in two by a chunk's end are completed by the next chunk.
  const decoder = options.raw ? null : new StringDecoder("utf8");
  const ansi = new AnsiParser();
  const end = build.logSize;
  let pos = Math.min(offset, end);
  while (pos < end) {
    const chunk = await readLog(ctx.pool, build.id, pos, Math.min(LOG_CHUNK_BYTES, end - pos));
    if (chunk.length === 0) break;
    pos += chunk.length;
    const out = decoder ? piecesToText(ansi.push(decoder.write(chunk), pos >= end)) : chunk;
    if (!res.write(out)) await drained(res);
    if (res.destroyed) return;
  }
  if (decoder) res.write(piecesToText(ansi.push(decoder.end(), true)));
  res.end();
}

/** Sends an artifact file: by id only, never a path from the request; Range supported. */
export async function sendArtifact(ctx: AppContext, req: Request, res: Response, id: unknown): Promise<void> {
  const artifactId = idOr404(id, "file");
  const artifact = await getArtifact(ctx.pool, artifactId, viewerOf(req));
  if (!artifact) throw new HttpError(404, `There is no file #${artifactId}.`);
  const root = resolve(ctx.config.artifactsDir);
  const path = resolve(root, artifact.storedPath);
  if (!path.startsWith(root + sep)) throw new HttpError(404, `There is no file #${artifactId}.`);
  const info = await stat(path).catch(() => null);
  if (!info || !info.isFile()) throw new HttpError(404, `The file ${artifact.name} of build #${artifact.buildId} is no longer stored (retention may have removed it).`);
  res.attachment(artifact.name);
  res.set("Accept-Ranges", "bytes");
  res.set("ETag", `"${artifact.sha256}"`);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Cache-Control", "private, max-age=0");
  res.type("application/octet-stream");
  let start = 0;
  let end = info.size - 1;
  const ifRange = req.get("if-range");
  // A Range for another version of the file (If-Range no longer matches) gets the whole file.
  if (!ifRange || ifRange === `"${artifact.sha256}"`) {
    const range = checkRange(req.get("range"), info.size);
    if (range.error !== undefined) {
      res.status(416).set("Content-Range", `bytes */${info.size}`).end();
      return;
    }
    if (range.value) {
      ({ start, end } = range.value);
      res.status(206).set("Content-Range", `bytes ${start}-${end}/${info.size}`);
    }
  }
  res.set("Content-Length", String(info.size === 0 ? 0 : end - start + 1));
  if (req.method === "HEAD" || info.size === 0) {
    res.end();
    return;
  }
  await new Promise<void>((resolvePromise, reject) => {
    const stream = createReadStream(path, { start, end });
    stream.on("error", reject);
    res.on("close", () => {
      stream.destroy();
      resolvePromise();
    });
    stream.pipe(res);
  });
}

/** What the build page shows beside the log: the facts partial's locals. */
async function buildFacts(ctx: AppContext, req: Request, build: BuildDetail) {
  const viewer = viewerOf(req);
  const [artifacts, earlier, manifestCount, retryOf] = await Promise.all([
    listArtifacts(ctx.pool, build.id),
    listBuilds(ctx.pool, { viewer, projectId: build.projectId, state: "SUCCEEDED", before: build.id, limit: 20 }),
    countManifest(ctx.pool, build.id),
    build.retryOf ? getBuild(ctx.pool, build.retryOf, viewer) : Promise.resolve(null),
  ]);
  const mayAct = hasRole(req.user, "builder");
  return {
    title: `Build #${build.id} of ${build.projectName} — ${build.state}`,
    build,
    artifacts,
    earlier,
    manifestCount,
    retryOf,
    canCancel: mayAct && canCancel(build.state),
    canRetry: mayAct && canRetry(build.state),
  };
}

export function buildsRouter(ctx: AppContext): Router {
  const r = Router();
  const tails = new LogTailCache();
  const streamSlots = new StreamSlots(ctx.config.liveStreamsPerUser ?? DEFAULT_LIVE_STREAMS_PER_USER);

  r.get("/builds", requireLogin, async (req, res) => {
    const viewer = viewerOf(req);
    const projectName = field(req.query, "project", 100);
    // States and reasons are matched ignoring case; the filter shows (and caches) their own spelling.
    const stateText = field(req.query, "state", 20);
    const reasonText = field(req.query, "reason", 20);
    const stateChecked: Checked<BuildState | undefined> = stateText ? checkBuildState(stateText) : { value: undefined };
    const reasonChecked: Checked<BuildReason | undefined> = reasonText ? checkBuildReason(reasonText) : { value: undefined };
    const state = stateChecked.value ?? stateText;
    const reason = reasonChecked.value ?? reasonText;
    const before = parseId(field(req.query, "before", 20)) ?? undefined;
    const filters = { project: projectName, state, reason };
    await servePage(ctx, req, res, JSON.stringify(["builds", projectName, state, reason, before ?? null]), async () => {
      const errors: string[] = [];
      let projectId: number | undefined;
      if (projectName) {
        const project = PROJECT_NAME_PATTERN.test(projectName) ? await getProjectByName(ctx.pool, projectName, viewer) : null;
        if (!project) throw new HttpError(404, `There is no project named ${projectName}.`);
        projectId = project.id;
      }
      for (const c of [stateChecked, reasonChecked]) if (c.error !== undefined) errors.push(c.error);
      const limit = 50;
      const builds = errors.length
        ? []
        : await listBuilds(ctx.pool, {
            viewer,
            projectId,
            state: stateChecked.value,
            reason: reasonChecked.value,
            limit,
            before,
          });
      const q = (extra: Record<string, string | number>) => {
        const p = new URLSearchParams();
        for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v !== "" && v !== undefined) p.set(k, String(v));
        const s = p.toString();
        return s ? `/builds?${s}` : "/builds";
      };
      return {
        view: "builds",
        status: errors.length ? 400 : 200,
        locals: {
          title: projectName ? `Builds of ${projectName}` : "Builds",
          builds,
          filters,
          errors,
          states: BUILD_STATES,
          reasons: BUILD_REASONS,
          olderUrl: builds.length === limit ? q({ before: builds[builds.length - 1]!.id }) : null,
          newestUrl: before ? q({}) : null,
        },
      };
    });
  });

  r.get("/builds/:id", requireLogin, async (req, res) => {
    const buildId = idOr404(req.params.id, "build");
    await servePage(ctx, req, res, `build ${buildId}`, async () => {
      const build = await visibleBuild(ctx, req, req.params.id);
      const start = Math.max(0, build.logSize - LOG_TAIL_BYTES);
      const live = !TERMINAL_BUILD_STATES.includes(build.state);
      // Independent reads, in parallel: the page waits for one round trip after the build's.
      const [raw, facts] = await Promise.all([
        build.logSize === 0
          ? Promise.resolve(Buffer.alloc(0))
          : live
            ? readLog(ctx.pool, build.id, start, build.logSize - start)
            : tails.get(build.id, start, build.logSize, () => readLog(ctx.pool, build.id, start, build.logSize - start)),
        buildFacts(ctx, req, build),
      ]);
      const from = tailStart(raw, start);
      const upto = completeUtf8Length(raw);
      const logText = raw.subarray(from, Math.max(from, upto)).toString("utf8");
      const logOffset = start + Math.max(from, upto);
      return {
        view: "build",
        // A running build's page (log tail, offsets) is out of date within a second: not kept.
        cacheable: !live,
        tags: [build.id],
        locals: { ...facts, logHtml: ansiToHtml(logText), logOffset, logTruncated: start > 0, live },
      };
    });
  });

  r.get("/builds/:id/log", requireLogin, async (req, res) => {
    const build = await visibleBuild(ctx, req, req.params.id);
    const offset = checkLogOffset(req.query.offset);
    if (offset.error !== undefined) throw new HttpError(400, offset.error);
    await sendFullLog(ctx, res, build, offset.value, { attachment: field(req.query, "download", 5) === "1", raw: field(req.query, "raw", 5) === "1" });
  });

  r.get("/builds/:id/log/stream", requireLogin, async (req, res) => {
    const build = await visibleBuild(ctx, req, req.params.id);
    const release = streamSlots.take(req.user!.id);
    if (!release) {
      throw new HttpError(429, `You have ${streamSlots.limit} live logs open already; close some build pages and reload this one.`);
    }
    res.on("close", release);
    // The facts beside the log, rendered as the page renders them, whenever they change.
    const renderFacts = async () => {
      const now = await visibleBuild(ctx, req, String(build.id));
      const locals = await buildFacts(ctx, req, now);
      const html = await new Promise<string>((ok, fail) => req.app.render("partials/build-facts", { ...res.locals, ...locals }, (err, out) => (err ? fail(err) : ok(out))));
      return { html, title: `${locals.title} · lexbuilder` };
    };
    await streamLog(ctx, req, res, build, renderFacts);
  });

  r.get("/builds/:id/manifest", requireLogin, async (req, res) => {
    const build = await visibleBuild(ctx, req, req.params.id);
    const manifest = await getManifest(ctx.pool, build.id);
    if (field(req.query, "format", 10) === "text") {
      res.type("text/plain; charset=utf-8");
      res.attachment(`${build.projectName}-build-${build.id}.packages`);
      res.send(manifest.map((m) => `${m.package}\t${m.version}\n`).join(""));
      return;
    }
    const earlier = await listBuilds(ctx.pool, { viewer: viewerOf(req), projectId: build.projectId, state: "SUCCEEDED", before: build.id, limit: 20 });
    res.render("manifest", { title: `Manifest of build #${build.id} (${build.projectName})`, build, manifest, earlier });
  });

  // Cancel and retry: a refusal the state machine gives (409) comes back as a message on the page.
  r.post("/builds/:id/cancel", requireLogin, checkCsrf, async (req, res) => {
    const buildId = idOr404(req.params.id, "build");
    try {
      const { build, state } = await cancelBuild(ctx, me(req), { buildId, via: "web" });
      flash(req, "ok", state === "CANCELLED" ? `Build #${build.id} is cancelled.` : `Build #${build.id} is being cancelled; the builder is stopping it.`);
    } catch (err) {
      if (!(err instanceof ActionError && err.status === 409)) throw err;
      flash(req, "error", err.message);
    }
    await seeOther(req, res, `/builds/${buildId}`);
  });

  r.post("/builds/:id/retry", requireLogin, checkCsrf, async (req, res) => {
    const buildId = idOr404(req.params.id, "build");
    try {
      const { build, retry } = await retryBuild(ctx, me(req), { buildId, via: "web" });
      flash(req, "ok", `Build #${retry.id} retries #${build.id}.`);
      await seeOther(req, res, `/builds/${retry.id}`);
    } catch (err) {
      if (!(err instanceof ActionError && err.status === 409)) throw err;
      flash(req, "error", err.message);
      await seeOther(req, res, `/builds/${buildId}`);
    }
  });

  r.get("/artifacts/:id", requireLogin, async (req, res) => {
    await sendArtifact(ctx, req, res, req.params.id);
  });

  r.get("/diff", requireLogin, async (req, res) => {
    const fromText = field(req.query, "from", 20);
    const toText = field(req.query, "to", 20);
    if (!fromText && !toText) {
      res.render("diff", { title: "Compare manifests", from: null, to: null, diff: null, error: null, fromText, toText });
      return;
    }
    const fromId = parseId(fromText);
    const toId = parseId(toText);
    if (fromId === null || toId === null) {
      res.status(400).render("diff", { title: "Compare manifests", from: null, to: null, diff: null, error: "Give two build numbers to compare.", fromText, toText });
      return;
    }
    const viewer = viewerOf(req);
    const [from, to] = await Promise.all([getBuild(ctx.pool, fromId, viewer), getBuild(ctx.pool, toId, viewer)]);
    if (!from) throw new HttpError(404, `There is no build #${fromId}.`);
    if (!to) throw new HttpError(404, `There is no build #${toId}.`);
    const diff = await diffManifests(ctx.pool, from.id, to.id);
    res.render("diff", { title: `Manifest changes #${from.id} → #${to.id}`, from, to, diff, error: null, fromText, toText });
  });

  return r;
}
