// Package search: which builds contain package P (optionally at version V).
import { Router } from "express";
import { searchPackages } from "@lexbuilder/shared-models/db";
import { checkPackageName, checkPackageVersion } from "@lexbuilder/shared-models/rules";
import { requireLogin } from "../auth.js";
import type { AppContext } from "../context.js";
import { field, parseId, viewerOf } from "./util.js";

const LIMIT = 100;

export function searchRouter(ctx: AppContext): Router {
  const r = Router();
  r.get("/packages", requireLogin, async (req, res) => {
    const name = field(req.query, "name", 300);
    const version = field(req.query, "version", 300);
    const before = parseId(field(req.query, "before", 20)) ?? undefined;
    // Nothing typed is the empty search form, not a mistake.
    const error = (name ? checkPackageName(name).error : undefined) ?? (version ? checkPackageVersion(version).error : undefined) ?? null;
    const hits = name && !error ? await searchPackages(ctx.pool, { viewer: viewerOf(req), package: name, version: version || undefined, limit: LIMIT, before }) : [];
    const older =
      hits.length === LIMIT
        ? `/packages?${new URLSearchParams({ name, ...(version ? { version } : {}), before: String(hits[hits.length - 1]!.buildId) }).toString()}`
        : null;
    res.status(error ? 400 : 200).render("packages", {
      title: name ? `Builds containing ${name}${version ? " " + version : ""}` : "Package search",
      name,
      version,
      hits,
      error,
      older,
    });
  });
  return r;
}
