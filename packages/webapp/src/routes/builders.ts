// Builders: the list, adding one with an immediate connectivity and token check, enable/disable.
import { Router } from "express";
import {
  BuilderExistsError,
  addBuilder,
  disableBuilder,
  enableBuilder,
  getBuilderByName,
  updateBuilderInfo,
} from "@lexbuilder/shared-models/db";
import { RpcClient, RpcFault, RpcTransportError, type InfoResult } from "@lexbuilder/shared-models/protocol";
import { checkDisableReason } from "@lexbuilder/shared-models/rules";
import { validateBuilderInput } from "@lexbuilder/shared-models/validation";
import { checkCsrf, HttpError, requireLogin, requireRole } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { seeOther } from "../respond.js";
import { checkbox, field, flash, me, viewerOf } from "./util.js";
import { buildersSeenBy } from "../builders-seen.js";

export interface BuilderCheck {
  ok: boolean;
  /** What failed, as a sentence, or what the builder reported. */
  message: string;
  /** The exact failure, for the webapp's log only (see checkBuilder). */
  detail?: string;
  info?: InfoResult;
}

/** Calls info() on the slave and explains the outcome in words. */
/** A socket error code in words: the page speaks to people, not to libuv. */
function networkProblem(code: string | undefined): string {
  const words: Record<string, string> = {
    ECONNREFUSED: "nothing listens on that port",
    ECONNRESET: "the connection was reset",
    ENOTFOUND: "no such host name",
    EAI_AGAIN: "the host name could not be looked up",
    EHOSTUNREACH: "no route to the host",
    ENETUNREACH: "the network is unreachable",
    ETIMEDOUT: "the connection timed out",
    EADDRNOTAVAIL: "that address cannot be used",
    CERT_HAS_EXPIRED: "its TLS certificate has expired",
    DEPTH_ZERO_SELF_SIGNED_CERT: "its TLS certificate is self-signed and not trusted",
    SELF_SIGNED_CERT_IN_CHAIN: "its TLS certificate chain is not trusted",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its TLS certificate cannot be verified",
    ERR_TLS_CERT_ALTNAME_INVALID: "its TLS certificate is for another name",
    EPROTO: "it does not speak TLS there",
  };
  return (code && words[code]) ?? "the connection failed";
}

export async function checkBuilder(url: string, token: string, timeoutMs = 10_000): Promise<BuilderCheck> {
  let client: RpcClient;
  try {
    client = new RpcClient({ url, token, timeoutMs });
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  try {
    const info = await client.call("info");
    if (!info.ready) {
      return { ok: false, info, message: `The builder answered but is not ready: ${info.notReadyReason ?? "it gave no reason"}.` };
    }
    return { ok: true, info, message: `Connected to ${info.hostname}: live-build ${info.liveBuildVersion}, architectures ${info.architectures.join(", ") || "none"}.` };
  } catch (err) {
    if (err instanceof RpcTransportError) {
      if (err.kind === "unauthorized") {
        return { ok: false, message: "The builder refused the token; paste the token that `lexbuilder-slave token` prints on that machine." };
      }
      // Whether nothing listened, something else answered or a firewall dropped the packets is
      // what a port scan through this form would read, so the page says the same sentence for
      // all of them; the exact failure goes to the webapp's log for the administrator.
      const exact: Record<string, string> = {
        timeout: `no answer within ${Math.round(timeoutMs / 1000)} seconds`,
        unreachable: networkProblem(err.code),
        http: `an HTTP ${err.status ?? "error"} answer, not lexbuilder-slave`,
        malformed: "an answer that is not a lexbuilder reply",
      };
      return {
        ok: false,
        message: `Could not reach lexbuilder-slave at ${url}; check the address and port, that lexbuilder-slave runs there, and that a firewall lets this host through (the webapp's log names the exact failure).`,
        detail: exact[err.kind] ?? err.message,
      };
    }
    if (err instanceof RpcFault) return { ok: false, message: `The builder reported an error: ${err.faultString}` };
    return { ok: false, message: `The check failed: ${(err as Error).message}` };
  } finally {
    client.close();
  }
}

export function buildersRouter(ctx: AppContext): Router {
  const r = Router();

  r.get("/builders", requireLogin, async (req, res) => {
    const builders = await buildersSeenBy(ctx.pool, viewerOf(req));
    res.render("builders", { title: "Builders", builders, manage: req.user?.role === "admin" });
  });

  r.get("/builders/new", requireLogin, requireRole("admin"), (_req, res) => {
    res.render("builder-form", { title: "Add a builder", form: { name: "", url: "http://", token: "", addAnyway: false }, errors: {}, check: null });
  });

  r.post("/builders", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const form = { name: field(req.body, "name", 100), url: field(req.body, "url", 2000), token: field(req.body, "token", 500), addAnyway: checkbox(req.body, "addAnyway") };
    const again = (status: number, errors: Record<string, string>, check: BuilderCheck | null) =>
      res.status(status).render("builder-form", { title: "Add a builder", form: { ...form, token: "" }, errors, check });
    const checked = validateBuilderInput({ name: form.name, url: form.url, token: form.token });
    if (!checked.ok) return again(400, checked.errors, null);
    if (await getBuilderByName(ctx.pool, checked.value.name)) return again(400, { name: `A builder named ${checked.value.name} already exists; choose another name.` }, null);
    const check = await checkBuilder(checked.value.url, checked.value.token);
    if (check.detail) ctx.log.warn({ builder: checked.value.name, url: checked.value.url, failure: check.detail }, "builder check failed");
    if (!check.ok && !form.addAnyway) return again(400, { check: check.message }, check);
    try {
      const builder = await addBuilder(ctx.pool, checked.value);
      if (check.info) {
        await updateBuilderInfo(ctx.pool, builder.id, {
          architectures: check.info.architectures,
          info: check.info as unknown as Record<string, unknown>,
          ready: check.info.ready,
          notReadyReason: check.info.notReadyReason ?? null,
        });
      }
      await audit(ctx.pool, user, "builder.add", "builder", builder.id, { name: builder.name, url: builder.url, check: check.message });
      flash(req, check.ok ? "ok" : "error", `Builder ${builder.name} added. ${check.message}`);
      await seeOther(req, res, "/builders");
    } catch (err) {
      if (err instanceof BuilderExistsError) return again(400, { name: err.message }, null);
      throw err;
    }
  });

  r.post("/builders/:name/enable", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const builder = await getBuilderByName(ctx.pool, String(req.params.name));
    if (!builder) throw new HttpError(404, `There is no builder named ${String(req.params.name).slice(0, 64)}.`);
    await enableBuilder(ctx.pool, builder.id);
    await audit(ctx.pool, user, "builder.enable", "builder", builder.id, { name: builder.name });
    flash(req, "ok", `Builder ${builder.name} is enabled.`);
    await seeOther(req, res, "/builders");
  });

  r.post("/builders/:name/disable", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const builder = await getBuilderByName(ctx.pool, String(req.params.name));
    if (!builder) throw new HttpError(404, `There is no builder named ${String(req.params.name).slice(0, 64)}.`);
    const { value: reason, error } = checkDisableReason(field(req.body, "reason"));
    if (error !== undefined) {
      flash(req, "error", error);
      await seeOther(req, res, "/builders");
      return;
    }
    await disableBuilder(ctx.pool, builder.id, reason);
    await audit(ctx.pool, user, "builder.disable", "builder", builder.id, { name: builder.name, reason });
    flash(req, "ok", `Builder ${builder.name} is disabled.`);
    await seeOther(req, res, "/builders");
  });
  return r;
}
