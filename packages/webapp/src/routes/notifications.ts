// Notification pages: a project's notifications (your mail subscription; its webhooks for its
// managers), the farm-wide webhooks for administrators, one webhook's delivery log with
// Redeliver and Send test event, and your e-mail address.
import { Router, type Request, type Response } from "express";
import { getMasterFact, getSubscription, getUserEmail, listDeliveries, listWebhooks } from "@lexbuilder/shared-models/db";
import { WEBHOOK_EVENTS, FARM_ONLY_EVENTS, SUBSCRIPTION_MODES } from "@lexbuilder/shared-models/rules";
import { checkCsrf, requireLogin, requireRole } from "../auth.js";
import type { AppContext } from "../context.js";
import { ActionError } from "../actions/errors.js";
import { createWebhook, deleteWebhook, hookScope, redeliver, sendTestEvent, setEmail, setSubscription, webhookIn, type HookScope } from "../actions/notifications.js";
import { mayManageProject, projectVisibleTo } from "../actions/permissions.js";
import { seeOther } from "../respond.js";
import { field, flash, me, parseId } from "./util.js";

interface WebhookFormValues {
  url: string;
  events: string[];
  format: string;
}

function formEvents(body: unknown): string[] {
  const v = (body as Record<string, unknown> | undefined)?.events;
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === "string").slice(0, 20);
}

export function notificationsRouter(ctx: AppContext): Router {
  const r = Router();
  const projectName = (req: Request): string | null => (typeof req.params.name === "string" ? req.params.name : null);
  const baseOf = (scope: HookScope) => (scope.project ? `/projects/${encodeURIComponent(scope.project.name)}` : "");

  async function mailState(userId: number) {
    const mail = await getMasterFact<{ enabled: boolean }>(ctx.pool, "mail");
    return { mailEnabled: mail?.enabled === true, email: await getUserEmail(ctx.pool, userId) };
  }

  /** The page of a scope's hooks (and, for a project, the viewer's subscription). */
  async function render(req: Request, res: Response, name: string | null, status = 200, form: WebhookFormValues | null = null, errors: Record<string, string> = {}) {
    const user = me(req);
    const project = name === null ? null : await projectVisibleTo(ctx.pool, user, name);
    const manage = project === null ? user.role === "admin" : await mayManageProject(ctx.pool, user, project);
    if (project === null && !manage) throw new ActionError(403, "Only administrators may see the farm-wide webhooks.");
    const hooks = manage ? await listWebhooks(ctx.pool, project?.id ?? null) : [];
    res.status(status).render("notifications", {
      title: project ? `Notifications · ${project.name}` : "Farm-wide webhooks",
      project,
      manage,
      hooks,
      base: project ? `/projects/${encodeURIComponent(project.name)}` : "",
      mode: project ? await getSubscription(ctx.pool, user.id, project.id) : null,
      modes: SUBSCRIPTION_MODES,
      events: project ? WEBHOOK_EVENTS.filter((e) => !FARM_ONLY_EVENTS.includes(e)) : WEBHOOK_EVENTS,
      form: form ?? { url: "", events: ["build.succeeded", "build.failed"], format: "json" },
      errors,
      ...(await mailState(user.id)),
    });
  }

  for (const base of ["/projects/:name", ""]) {
    const hooksPage = base ? `${base}/notifications` : "/webhooks";
    r.get(hooksPage, requireLogin, async (req, res) => render(req, res, projectName(req)));

    r.post(`${base}/webhooks`, requireLogin, checkCsrf, requireRole("builder"), async (req, res) => {
      const scope = await hookScope(ctx, me(req), projectName(req));
      const form = { url: field(req.body, "url", 2100), events: formEvents(req.body), format: field(req.body, "format", 20) || "json" };
      try {
        await createWebhook(ctx, me(req), scope, { url: form.url, secret: (req.body as Record<string, unknown>)?.secret, events: form.events, format: form.format });
      } catch (err) {
        if (err instanceof ActionError && err.field) return render(req, res, projectName(req), err.status, form, { [err.field]: err.message });
        throw err;
      }
      flash(req, "ok", "Webhook added. Use “Send test event” to check that the receiver accepts its signature.");
      await seeOther(req, res, base ? `${baseOf(scope)}/notifications` : "/webhooks");
    });

    r.get(`${base}/webhooks/:id`, requireLogin, async (req, res) => {
      const scope = await hookScope(ctx, me(req), projectName(req));
      const hook = await webhookIn(ctx, scope, parseId(req.params.id));
      res.render("webhook", {
        title: `Webhook #${hook.id}`,
        project: scope.project,
        base: baseOf(scope),
        hook,
        deliveries: await listDeliveries(ctx.pool, hook.id),
      });
    });

    r.post(`${base}/webhooks/:id/delete`, requireLogin, checkCsrf, async (req, res) => {
      const scope = await hookScope(ctx, me(req), projectName(req));
      await deleteWebhook(ctx, me(req), scope, parseId(req.params.id));
      flash(req, "ok", "Webhook deleted; nothing more is sent to it.");
      await seeOther(req, res, base ? `${baseOf(scope)}/notifications` : "/webhooks");
    });

    r.post(`${base}/webhooks/:id/test`, requireLogin, checkCsrf, async (req, res) => {
      const scope = await hookScope(ctx, me(req), projectName(req));
      await sendTestEvent(ctx, me(req), scope, parseId(req.params.id));
      flash(req, "ok", "A test event is on its way; its delivery appears below within seconds.");
      await seeOther(req, res, `${baseOf(scope)}/webhooks/${parseId(req.params.id)}`);
    });

    r.post(`${base}/webhooks/:id/deliveries/:delivery/redeliver`, requireLogin, checkCsrf, async (req, res) => {
      const scope = await hookScope(ctx, me(req), projectName(req));
      await redeliver(ctx, me(req), scope, parseId(req.params.id), String(req.params.delivery));
      flash(req, "ok", "The delivery is sent again, with the same delivery id.");
      await seeOther(req, res, `${baseOf(scope)}/webhooks/${parseId(req.params.id)}`);
    });
  }

  r.post("/projects/:name/subscription", requireLogin, checkCsrf, async (req, res) => {
    const name = String(req.params.name);
    const mode = await setSubscription(ctx, me(req), name, field(req.body, "mode", 20));
    flash(req, "ok", mode === "none" ? "You get no mail about this project." : `Subscribed: you get mail for ${mode === "all" ? "every result" : mode === "changes" ? "failures and fixes" : "releases"}.`);
    await seeOther(req, res, `/projects/${encodeURIComponent(name)}/notifications`);
  });

  r.post("/account/email", requireLogin, checkCsrf, async (req, res) => {
    try {
      const email = await setEmail(ctx, me(req), field(req.body, "email", 300));
      flash(req, "ok", email ? `Mail goes to ${email}.` : "Your e-mail address was removed; you get no mail.");
    } catch (err) {
      if (!(err instanceof ActionError)) throw err;
      flash(req, "error", err.message);
    }
    await seeOther(req, res, "/account");
  });

  return r;
}
