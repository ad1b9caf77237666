// A project's Atom 1.0 feed: its last 50 finished builds, releases among them. Public projects
// are open to anyone; a private one needs an API token (Authorization: Bearer) of someone who
// may see it, or a logged-in session — to everyone else it does not exist.
import { createHash } from "node:crypto";
import { Router, type Request } from "express";
import { findUserByApiToken, getProjectByName, listBuilds, type BuildDetail, type Project } from "@lexbuilder/shared-models/db";
import { PROJECT_NAME_PATTERN } from "@lexbuilder/shared-models/protocol";
import { HttpError } from "../auth.js";
import type { AppContext } from "../context.js";
import { viewerOf } from "./util.js";

const FEED_SIZE = 50;

function xml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    // Characters XML 1.0 cannot carry at all.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd");
}

function iso(d: Date | string | null | undefined): string {
  return new Date(d ?? 0).toISOString();
}

export function atomFeed(project: Project, builds: BuildDetail[], baseUrl: string): string {
  const projectUrl = `${baseUrl}/projects/${encodeURIComponent(project.name)}`;
  const updated = builds[0]?.finishedAt ?? project.createdAt ?? new Date(0);
  const entries = builds.map((b) => {
    const release = b.reason === "milestone" && b.state === "SUCCEEDED";
    const word = b.state === "SUCCEEDED" ? "succeeded" : b.state === "FAILED" ? "failed" : "was cancelled";
    const title = release ? `${project.name} ${b.milestone} released (build #${b.id}, ${b.architecture})` : `${project.name} build #${b.id} ${word} (${b.architecture})`;
    const summary = [
      `Build #${b.id} of ${project.name} ${word}.`,
      `Ref ${b.configRef}${b.configRevision ? ` at ${b.configRevision.slice(0, 12)}` : ""}.`,
      b.state === "FAILED" && b.failureMessage ? b.failureMessage : "",
    ]
      .filter(Boolean)
      .join(" ");
    return `  <entry>
    <id>${xml(`${baseUrl}/builds/${b.id}`)}</id>
    <title>${xml(title)}</title>
    <updated>${iso(b.finishedAt ?? b.requestedAt)}</updated>
    <published>${iso(b.requestedAt)}</published>
    <link rel="alternate" type="text/html" href="${xml(`${baseUrl}/builds/${b.id}`)}"/>
    <category term="${release ? "release" : "build"}"/>
    <category term="${xml(b.state.toLowerCase())}"/>
    <summary>${xml(summary)}</summary>
  </entry>`;
  });
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>${xml(projectUrl)}</id>
  <title>${xml(`lexbuilder: ${project.title || project.name}`)}</title>
  <updated>${iso(updated)}</updated>
  <author><name>lexbuilder</name></author>
  <link rel="self" type="application/atom+xml" href="${xml(`${projectUrl}/feed.atom`)}"/>
  <link rel="alternate" type="text/html" href="${xml(projectUrl)}"/>
${entries.join("\n")}
</feed>
`;
}

export function feedRouter(ctx: AppContext): Router {
  const r = Router();

  /** The session's user, or a token's, or nobody. */
  async function viewer(req: Request) {
    if (req.user) return viewerOf(req);
    const m = /^Bearer ([^\s]+)$/i.exec((req.get("authorization") ?? "").trim());
    if (!m) return { userId: null, role: null };
    const token = m[1]!;
    const user = ctx.caches
      ? await ctx.caches.tokens.get(createHash("sha256").update(token).digest("hex"), () => findUserByApiToken(ctx.pool, token), (u) => (u ? {} : null))
      : await findUserByApiToken(ctx.pool, token);
    if (!user) throw new HttpError(401, "This API token is unknown, revoked, or belongs to a deactivated user.");
    return { userId: user.id, role: user.role };
  }

  r.get("/projects/:name/feed.atom", async (req, res) => {
    const name = String(req.params.name);
    const who = await viewer(req);
    const project = PROJECT_NAME_PATTERN.test(name) ? await getProjectByName(ctx.pool, name, who) : null;
    if (!project) throw new HttpError(404, `There is no project named ${name.slice(0, 64)}; a private project's feed needs an API token (Authorization: Bearer).`);
    const builds = await listBuilds(ctx.pool, { viewer: who, projectId: project.id, state: ["SUCCEEDED", "FAILED", "CANCELLED"], limit: FEED_SIZE });
    const base = ctx.config.publicUrl ?? `${req.protocol}://${req.get("host")}`;
    res.type("application/atom+xml; charset=utf-8").set("Cache-Control", "no-store").send(atomFeed(project, builds, base));
  });

  return r;
}
