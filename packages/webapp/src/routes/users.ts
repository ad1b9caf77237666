// Users (admins: create, role, deactivate) and each person's own account and API tokens.
import { Router, type Request, type Response } from "express";
import {
  UserExistsError,
  createApiToken,
  createUser,
  getUserByName,
  listApiTokens,
  getUserEmail,
  listUsers,
  revokeApiToken,
  setUserActive,
  changePasswordEndingOtherSessions,
  setUserRole,
  authenticateUser,
} from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { USER_NAME_PATTERN, checkRole, checkTokenLabel } from "@lexbuilder/shared-models/rules";
import { ROLES } from "@lexbuilder/shared-models/states";
import { validateUserInput } from "@lexbuilder/shared-models/validation";
import { checkCsrf, HttpError, requireLogin, requireRole } from "../auth.js";
import { failedAttemptLimiter } from "./auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { seeOther } from "../respond.js";
import { field, flash, idOr404, me } from "./util.js";

export function usersRouter(ctx: AppContext): Router {
  const r = Router();

  const renderUsers = async (res: import("express").Response, status: number, form: { name: string; role: string }, errors: Record<string, string>) => {
    const users = await listUsers(ctx.pool);
    res.status(status).render("users", { title: "Users", users, roles: ROLES, form, errors });
  };

  r.get("/users", requireLogin, requireRole("admin"), async (_req, res) => {
    await renderUsers(res, 200, { name: "", role: "viewer" }, {});
  });

  r.post("/users", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const form = { name: field(req.body, "name", 100), role: field(req.body, "role", 20) };
    const password = typeof req.body.password === "string" ? req.body.password : "";
    const checked = validateUserInput({ name: form.name, role: form.role, password });
    if (!checked.ok) return renderUsers(res, 400, form, checked.errors);
    try {
      const created = await createUser(ctx.pool, {
        name: checked.value.name,
        role: checked.value.role,
        passwordHash: await hashPassword(password),
      });
      ctx.caches?.userChanged(created.id);
      await audit(ctx.pool, user, "user.create", "user", created.id, { name: created.name, role: created.role });
      flash(req, "ok", `User ${created.name} created with the ${created.role} role.`);
      await seeOther(req, res, "/users");
    } catch (err) {
      if (err instanceof UserExistsError) return renderUsers(res, 400, form, { name: err.message });
      throw err;
    }
  });

  async function target(name: unknown) {
    const n = typeof name === "string" ? name : "";
    const u = USER_NAME_PATTERN.test(n) ? await getUserByName(ctx.pool, n) : null;
    if (!u) throw new HttpError(404, `There is no user named ${n.slice(0, 32)}.`);
    return u;
  }

  r.post("/users/:name/role", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const u = await target(req.params.name);
    const { value: role, error } = checkRole(field(req.body, "role", 20));
    if (error !== undefined) {
      flash(req, "error", error);
    } else if (u.id === user.id && role !== "admin") {
      flash(req, "error", "You cannot take away your own administrator role; ask another administrator.");
    } else {
      await setUserRole(ctx.pool, u.id, role);
      ctx.caches?.userChanged(u.id);
      await audit(ctx.pool, user, "user.role", "user", u.id, { name: u.name, from: u.role, to: role });
      flash(req, "ok", `${u.name} now has the ${role} role.`);
    }
    await seeOther(req, res, "/users");
  });

  r.post("/users/:name/active", requireLogin, checkCsrf, requireRole("admin"), async (req, res) => {
    const user = me(req);
    const u = await target(req.params.name);
    const active = field(req.body, "active", 10) === "true";
    if (u.id === user.id && !active) {
      flash(req, "error", "You cannot deactivate your own account.");
    } else {
      await setUserActive(ctx.pool, u.id, active);
      ctx.caches?.userChanged(u.id);
      await audit(ctx.pool, user, active ? "user.activate" : "user.deactivate", "user", u.id, { name: u.name });
      flash(req, "ok", active ? `${u.name} can log in again.` : `${u.name} is deactivated: their sessions and API tokens no longer work.`);
    }
    await seeOther(req, res, "/users");
  });

  const renderAccount = async (req: import("express").Request, res: import("express").Response, status: number, extra: Record<string, unknown> = {}) => {
    const user = me(req);
    const tokens = await listApiTokens(ctx.pool, user.id);
    const email = await getUserEmail(ctx.pool, user.id);
    res.status(status).render("account", { title: `Account of ${user.name}`, tokens, email, newToken: null, tokenError: null, tokenLabel: "", passwordErrors: {}, ...extra });
  };

  r.get("/account", requireLogin, async (req, res) => {
    await renderAccount(req, res, 200);
  });

  r.post("/account/tokens", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const typed = field(req.body, "label", 200);
    const { value: label, error } = checkTokenLabel(typed);
    if (error !== undefined) return renderAccount(req, res, 400, { tokenError: error, tokenLabel: typed });
    const { id, token } = await createApiToken(ctx.pool, user.id, label);
    await audit(ctx.pool, user, "token.create", "api_token", id, { label });
    res.set("Cache-Control", "no-store");
    await renderAccount(req, res, 201, { newToken: { id, label, token } });
  });

  r.post("/account/tokens/:id/revoke", requireLogin, checkCsrf, async (req, res) => {
    const user = me(req);
    const id = idOr404(req.params.id, "token");
    if (!(await revokeApiToken(ctx.pool, user.id, id))) throw new HttpError(404, `You have no live token #${id}.`);
    ctx.caches?.tokensChanged();
    await audit(ctx.pool, user, "token.revoke", "api_token", id, {});
    flash(req, "ok", "The token is revoked; scripts using it now get 401.");
    await seeOther(req, res, "/account");
  });

  // A wrong current password is a guess like a failed login (and costs a slow hash): the same
  // limits per address and per account.
  const refusePasswordChange = (sentence: string) => (req: Request, res: Response) => {
    flash(req, "error", sentence);
    void seeOther(req, res, "/account");
  };
  const passwordLimiters = [
    failedAttemptLimiter(ctx.config.loginAttempts, refusePasswordChange("Too many failed password changes from your address. Wait 15 minutes and try again.")),
    failedAttemptLimiter(
      ctx.config.accountLoginAttempts,
      refusePasswordChange("Too many failed password changes for this account. Wait 15 minutes and try again."),
      (req) => `password:${req.user?.id ?? 0}`,
    ),
  ];
  r.post("/account/password", requireLogin, checkCsrf, ...passwordLimiters, async (req, res) => {
    const user = me(req);
    const current = typeof req.body.current === "string" ? req.body.current : "";
    const next = typeof req.body.password === "string" ? req.body.password : "";
    const errors: Record<string, string> = {};
    if (!(await authenticateUser(ctx.pool, user.name, current))) errors.current = "That is not your current password.";
    const checked = validateUserInput({ name: user.name, role: user.role, password: next });
    if (!checked.ok && checked.errors.password) errors.password = checked.errors.password;
    if (Object.keys(errors).length) return renderAccount(req, res, 400, { passwordErrors: errors });
    const ended = await changePasswordEndingOtherSessions(ctx.pool, user.id, await hashPassword(next), req.sessionID);
    ctx.caches?.userChanged(user.id);
    await audit(ctx.pool, user, "user.password", "user", user.id, { otherSessionsEnded: ended });
    flash(req, "ok", ended ? `Your password is changed; your ${ended} other session${ended === 1 ? " was" : "s were"} logged out.` : "Your password is changed.");
    await seeOther(req, res, "/account");
  });
  return r;
}
