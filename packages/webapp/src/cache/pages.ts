// Pages through the page cache: what decides what a user may see (admin, or the user's own id
// and role) is part of every key, so a cached page never crosses from one user to another
// with different rights; the per-session parts are filled in per answer (fragment.ts).
import type { Request, Response } from "express";
import type { AppContext } from "../context.js";
import { renderFragment, sendFragment } from "./fragment.js";
import type { CachedPage, CachedJson } from "./web-caches.js";
import { createHash } from "node:crypto";

export interface PageSpec {
  view: string;
  locals: Record<string, unknown>;
  status?: number;
  /** Default true; only 200 answers are ever kept. */
  cacheable?: boolean;
  tags?: number[];
}

/**
 * Who sees the same pages: every administrator sees everything; anyone else sees public
 * projects and their own memberships, and their role decides the buttons.
 */
export function visibilityKey(req: Request): string {
  const u = req.user;
  if (!u) return "anonymous";
  return u.role === "admin" ? "admin" : `${u.role}:${u.id}`;
}

/** Renders (or takes from the cache) and sends a page. key null: never cached. */
export async function servePage(ctx: AppContext, req: Request, res: Response, key: string | null, produce: () => Promise<PageSpec>): Promise<void> {
  const load = async (): Promise<CachedPage> => {
    const spec = await produce();
    const fragment = await renderFragment(res, spec.view, spec.locals);
    return { fragment, status: spec.status ?? 200, cacheable: spec.cacheable ?? true, tags: spec.tags ?? [] };
  };
  const fullKey = key === null ? null : `${visibilityKey(req)}|${req.path}|${key}`;
  const page =
    fullKey && ctx.caches
      ? await ctx.caches.pages.get(fullKey, load, (p) => (p.status === 200 && p.cacheable ? { bytes: p.fragment.bytes, tags: p.tags } : null))
      : await load();
  sendFragment(req, res, page.fragment, page.status);
}

/** The same for a JSON answer of the API. */
export async function serveJson(ctx: AppContext, req: Request, res: Response, key: string, produce: () => Promise<unknown>): Promise<void> {
  const load = async (): Promise<CachedJson> => {
    const body = Buffer.from(JSON.stringify(await produce()), "utf8");
    return { body, etag: `W/"${createHash("sha1").update(body).digest("base64url").slice(0, 27)}"` };
  };
  const fullKey = `${visibilityKey(req)}|${key}`;
  const answer = ctx.caches ? await ctx.caches.json.get(fullKey, load, (a) => ({ bytes: a.body.length })) : await load();
  res.set("Content-Type", "application/json; charset=utf-8");
  res.set("ETag", answer.etag);
  res.send(answer.body);
}
