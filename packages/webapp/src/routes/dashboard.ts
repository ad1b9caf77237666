// The dashboard: what is running, what waits, the builders, what failed lately.
import { Router } from "express";
import { listBuilds } from "@lexbuilder/shared-models/db";
import { buildersSeenBy } from "../builders-seen.js";
import { requireLogin } from "../auth.js";
import type { AppContext } from "../context.js";
import { viewerOf } from "./util.js";

export function dashboardRouter(ctx: AppContext): Router {
  const r = Router();
  r.get("/", requireLogin, async (req, res) => {
    const viewer = viewerOf(req);
    const [running, queued, failures, builders] = await Promise.all([
      listBuilds(ctx.pool, { viewer, state: ["DISPATCHING", "BUILDING", "COLLECTING", "CANCELLING"], limit: 50 }),
      listBuilds(ctx.pool, { viewer, state: "QUEUED", limit: 50 }),
      listBuilds(ctx.pool, { viewer, state: "FAILED", limit: 10 }),
      buildersSeenBy(ctx.pool, viewer),
    ]);
    res.render("dashboard", { title: "Dashboard", running, queued, failures, builders });
  });
  return r;
}
