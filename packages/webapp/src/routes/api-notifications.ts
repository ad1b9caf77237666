// The JSON API for notifications: a project's webhooks (its managers) or the farm's
// (/api/v1/webhooks, administrators), their delivery logs and redeliveries, and the caller's own
// mail subscription. Mounted inside the API router, after its token check.
import { Router, type Request } from "express";
import { getSubscription, listDeliveries, listWebhooks } from "@lexbuilder/shared-models/db";
import { HttpError } from "../auth.js";
import { createWebhook, deleteWebhook, hookScope, redeliver, sendTestEvent, setSubscription, webhookIn } from "../actions/notifications.js";
import { projectVisibleTo } from "../actions/permissions.js";
import type { AppContext } from "../context.js";
import { me, parseId } from "./util.js";

function objectBody(req: Request, allowed: string[], example: string): Record<string, unknown> {
  const body = req.body as unknown;
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, `The body must be a JSON object like ${example}.`);
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new HttpError(400, `Unknown field "${key.slice(0, 40)}"; accepted are ${allowed.join(", ")}.`);
  }
  return body as Record<string, unknown>;
}

const WEBHOOK_EXAMPLE = '{"url": "https://ci.example.org/hook", "secret": "at least 16 characters", "events": ["build.failed"], "format": "json"}';

const apiWebhook = (w: Awaited<ReturnType<typeof listWebhooks>>[number]) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  format: w.format,
  active: w.active,
  createdAt: w.createdAt.toISOString(),
  lastDelivery: w.lastDelivery ? { state: w.lastDelivery.state, at: w.lastDelivery.at.toISOString() } : null,
});

export function notificationsApi(ctx: AppContext): Router {
  const r = Router();
  // The same handlers serve /projects/:name/webhooks… and the farm-wide /webhooks….
  const scopeOf = (req: Request) => hookScope(ctx, me(req), typeof req.params.name === "string" ? req.params.name : null);

  for (const base of ["/projects/:name/webhooks", "/webhooks"]) {
    r.get(base, async (req, res) => {
      const scope = await scopeOf(req);
      res.json((await listWebhooks(ctx.pool, scope.project?.id ?? null)).map(apiWebhook));
    });

    r.post(base, async (req, res) => {
      const scope = await scopeOf(req);
      const body = objectBody(req, ["url", "secret", "events", "format"], WEBHOOK_EXAMPLE);
      if (body.events !== undefined && !Array.isArray(body.events)) throw new HttpError(400, 'events must be a list, e.g. ["build.succeeded", "build.failed"].');
      const id = await createWebhook(ctx, me(req), scope, { url: body.url, secret: body.secret, events: body.events, format: body.format });
      res.status(201).location(`/api/v1${req.path}/${id}`).json({ id });
    });

    r.delete(`${base}/:id`, async (req, res) => {
      await deleteWebhook(ctx, me(req), await scopeOf(req), parseId(req.params.id));
      res.status(204).end();
    });

    r.get(`${base}/:id/deliveries`, async (req, res) => {
      const hook = await webhookIn(ctx, await scopeOf(req), parseId(req.params.id));
      const list = await listDeliveries(ctx.pool, hook.id);
      res.json(
        list.map((d) => ({
          id: d.id,
          event: d.event,
          state: d.state,
          attempts: d.attempts,
          createdAt: d.createdAt.toISOString(),
          nextAttemptAt: d.nextAttemptAt ? new Date(d.nextAttemptAt).toISOString() : null,
          lastError: d.lastError,
          log: d.log.map((a) => ({ ...a, at: a.at.toISOString() })),
        })),
      );
    });

    r.post(`${base}/:id/deliveries/:delivery/redeliver`, async (req, res) => {
      await redeliver(ctx, me(req), await scopeOf(req), parseId(req.params.id), String(req.params.delivery));
      res.status(202).json({ id: String(req.params.delivery) });
    });

    r.post(`${base}/:id/test`, async (req, res) => {
      await sendTestEvent(ctx, me(req), await scopeOf(req), parseId(req.params.id));
      res.status(202).json({ queued: true });
    });
  }

  r.get("/projects/:name/subscription", async (req, res) => {
    const project = await projectVisibleTo(ctx.pool, me(req), String(req.params.name));
    res.json({ mode: await getSubscription(ctx.pool, me(req).id, project.id) });
  });

  r.put("/projects/:name/subscription", async (req, res) => {
    const body = objectBody(req, ["mode"], '{"mode": "changes"}');
    res.json({ mode: await setSubscription(ctx, me(req), String(req.params.name), body.mode) });
  });

  return r;
}
