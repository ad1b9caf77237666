// Login and logout. Failed logins are rate-limited per address; the session id is renewed on
// login so a planted cookie is worthless.
import { Router } from "express";
import { rateLimit } from "express-rate-limit";
import { authenticateUser } from "@lexbuilder/shared-models/db";
import { checkCsrf, csrfToken, safeNext } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { seeOther } from "../respond.js";

export function authRouter(ctx: AppContext): Router {
  const r = Router();
  const limiter = rateLimit({
    windowMs: 15 * 60 * 1000,
    limit: ctx.config.loginAttempts,
    skipSuccessfulRequests: true,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    handler: (req, res) => {
      res.status(429).render("login", {
        title: "Log in",
        error: "Too many failed logins from your address. Wait 15 minutes and try again.",
        name: typeof req.body?.name === "string" ? req.body.name : "",
        next: safeNext(req.body?.next),
      });
    },
  });

  r.get("/login", (req, res) => {
    if (req.user) return res.redirect(303, safeNext(req.query.next));
    csrfToken(req);
    res.render("login", { title: "Log in", error: null, name: "", next: safeNext(req.query.next) });
  });

  r.post("/login", limiter, checkCsrf, async (req, res, next) => {
    try {
      const name = typeof req.body.name === "string" ? req.body.name.trim().slice(0, 64) : "";
      const password = typeof req.body.password === "string" ? req.body.password : "";
      const dest = safeNext(req.body.next);
      const user = name && password ? await authenticateUser(ctx.pool, name, password) : null;
      if (!user) {
        res.status(401).render("login", {
          title: "Log in",
          error: "That user name and password do not match an active account.",
          name,
          next: dest,
        });
        return;
      }
      await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
      req.session.userId = user.id;
      csrfToken(req);
      await audit(ctx.pool, { id: user.id, name: user.name }, "user.login", "user", user.id, {});
      await seeOther(req, res, dest);
    } catch (err) {
      next(err);
    }
  });

  r.post("/logout", checkCsrf, async (req, res, next) => {
    const user = req.user;
    req.session.destroy(async (err) => {
      if (err) return next(err);
      res.clearCookie("lexbuilder.sid");
      if (user) await audit(ctx.pool, user, "user.logout", "user", user.id, {}).catch(() => {});
      await seeOther(req, res, "/login").catch(next);
    });
  });
  return r;
}
