// Notification actions: a project's (or, for administrators, the farm's) webhooks, their test
// events and redeliveries, a user's e-mail address and mail subscriptions. Each checks
// permission, validates with the shared rules, and writes with its audit row in one transaction.
// A webhook's secret never goes into the audit row.
import {
  createWebhook as createWebhookRow,
  deleteWebhook as deleteWebhookRow,
  getWebhook,
  queueTestEvent,
  redeliver as redeliverRow,
  setSubscription as setSubscriptionRow,
  setUserEmail,
  type Project,
  type Webhook,
} from "@lexbuilder/shared-models/db";
import {
  checkEmail,
  checkSubscriptionMode,
  checkWebhookEvents,
  checkWebhookFormat,
  checkWebhookSecret,
  checkWebhookUrl,
  type Checked,
  type SubscriptionMode,
} from "@lexbuilder/shared-models/rules";
import { checkWebhookTarget } from "@lexbuilder/shared-models/webhook-target";
import type { CurrentUser } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { ActionError } from "./errors.js";
import { projectManagedBy, projectVisibleTo, requireAdmin } from "./permissions.js";
import { writeAndAudit } from "./run.js";

/** Whose hooks: a project's (its managers) or the farm's (administrators). */
export type HookScope = { project: Project } | { project: null };

/** The scope `user` may manage: a project name, or null for the farm-wide hooks. */
export async function hookScope(ctx: AppContext, user: CurrentUser, projectName: string | null): Promise<HookScope> {
  if (projectName === null) {
    requireAdmin(user);
    return { project: null };
  }
  return { project: await projectManagedBy(ctx.pool, user, projectName) };
}

function valueOr400<T>(checked: Checked<T>, field: string): T {
  if (checked.error !== undefined) throw new ActionError(400, checked.error, field);
  return checked.value;
}

export interface WebhookForm {
  url: unknown;
  secret: unknown;
  events: unknown;
  format: unknown;
}

/** Checks everything, the target's addresses included, before anything is stored. */
export async function createWebhook(ctx: AppContext, user: CurrentUser, scope: HookScope, form: WebhookForm): Promise<number> {
  const url = valueOr400(checkWebhookUrl(form.url), "url");
  const secret = valueOr400(checkWebhookSecret(form.secret), "secret");
  const events = valueOr400(checkWebhookEvents(form.events, { farm: scope.project === null }), "events");
  const format = valueOr400(checkWebhookFormat(form.format), "format");
  valueOr400(await checkWebhookTarget(url, ctx.config.webhookPolicy), "url");
  const projectId = scope.project?.id ?? null;
  return writeAndAudit(ctx, async (db) => {
    const id = await createWebhookRow(db, { projectId, url: url.toString(), secret, events, format, createdBy: user.id });
    await audit(db, user, "webhook.create", "webhook", id, { project: scope.project?.name ?? null, url: url.toString(), events, format });
    return id;
  });
}

export async function webhookIn(ctx: AppContext, scope: HookScope, id: number | null): Promise<Webhook> {
  const hook = id === null ? null : await getWebhook(ctx.pool, id, scope.project?.id ?? null);
  if (!hook) throw new ActionError(404, `There is no webhook #${id ?? "?"} here.`);
  return hook;
}

export async function deleteWebhook(ctx: AppContext, user: CurrentUser, scope: HookScope, id: number | null): Promise<void> {
  const hook = await webhookIn(ctx, scope, id);
  await writeAndAudit(ctx, async (db) => {
    if (!(await deleteWebhookRow(db, hook.id, scope.project?.id ?? null))) throw new ActionError(404, `There is no webhook #${hook.id} here.`);
    await audit(db, user, "webhook.delete", "webhook", hook.id, { project: scope.project?.name ?? null, url: hook.url });
  });
}

export async function sendTestEvent(ctx: AppContext, user: CurrentUser, scope: HookScope, id: number | null): Promise<void> {
  const hook = await webhookIn(ctx, scope, id);
  await writeAndAudit(ctx, async (db) => {
    await queueTestEvent(db, hook.id, scope.project?.id ?? null);
    await audit(db, user, "webhook.test", "webhook", hook.id, { project: scope.project?.name ?? null });
  });
}

export async function redeliver(ctx: AppContext, user: CurrentUser, scope: HookScope, id: number | null, deliveryId: string): Promise<void> {
  const hook = await webhookIn(ctx, scope, id);
  await writeAndAudit(ctx, async (db) => {
    if (!(await redeliverRow(db, deliveryId, hook.id))) {
      throw new ActionError(404, "There is no such delivery for this webhook, or it is being sent right now; look again in a moment.");
    }
    await audit(db, user, "webhook.redeliver", "webhook", hook.id, { delivery: deliveryId });
  });
}

/** Anyone who can see a project may subscribe to it. */
export async function setSubscription(ctx: AppContext, user: CurrentUser, projectName: string, mode: unknown): Promise<SubscriptionMode> {
  const project = await projectVisibleTo(ctx.pool, user, projectName);
  const m = valueOr400(checkSubscriptionMode(mode), "mode");
  await writeAndAudit(ctx, async (db) => {
    await setSubscriptionRow(db, user.id, project.id, m);
    await audit(db, user, "subscription.set", "project", project.id, { mode: m });
  });
  return m;
}

export async function setEmail(ctx: AppContext, user: CurrentUser, email: unknown): Promise<string | null> {
  const value = valueOr400(checkEmail(email), "email");
  await writeAndAudit(ctx, async (db) => {
    if (await setUserEmail(db, user.id, value)) await audit(db, user, "user.email", "user", user.id, { email: value });
  });
  return value;
}
