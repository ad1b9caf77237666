// Login and logout. Failed logins are limited per address and per account (so one proxy's
// users are not locked out together, and rotating X-Forwarded-For does not help a guesser of
// one account); the session id is renewed on login so a planted cookie is worthless.
import { Router, type Request, type Response } from "express";
import { rateLimit } from "express-rate-limit";
import { authenticateUser } from "@lexbuilder/shared-models/db";
import { checkCsrf, csrfToken, FORM_COOKIE, safeNext } from "../auth.js";
import { audit } from "../audit.js";
import type { AppContext } from "../context.js";
import { seeOther } from "../respond.js";

export function authRouter(ctx: AppContext): Router {
  const r = Router();
  const limiter = failedAttemptLimiter(ctx.config.loginAttempts, refuseLogin("Too many failed logins from your address. Wait 15 minutes and try again."));
  const accountLimiter = failedAttemptLimiter(
    ctx.config.accountLoginAttempts,
    refuseLogin("Too many failed logins for this account. Wait 15 minutes and try again; other accounts can log in meanwhile."),
    (req) => `account:${typeof req.body?.name === "string" ? req.body.name.trim().toLowerCase().slice(0, 64) : ""}`,
  );

  r.get("/login", (req, res) => {
    if (req.user) return res.redirect(303, safeNext(req.query.next));
    // The form's token comes from a cookie, not a session: no session row before a login.
    res.render("login", { title: "Log in", error: null, name: "", next: safeNext(req.query.next) });
  });

  r.post("/login", limiter, checkCsrf, accountLimiter, async (req, res, next) => {
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
      csrfToken(req, res);
      res.clearCookie(FORM_COOKIE, { path: "/" });
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

/**
 * Counts failed attempts (answers of 400 and above) in 15-minute windows, keyed by the caller's
 * address (express-rate-limit's own key, which handles IPv6 subnets) or by `key`, and lets
 * `refuse` answer with a sentence once the limit is reached. Counters live in this process
 * (each webapp counts its own).
 */
export function failedAttemptLimiter(limit: number, refuse: (req: Request, res: Response) => void, key?: (req: Request) => string) {
  return rateLimit({
    windowMs: 15 * 60 * 1000,
    limit,
    skipSuccessfulRequests: true,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    ...(key ? { keyGenerator: key } : {}),
    handler: (req, res) => refuse(req, res),
  });
}

/** The login form again, with `sentence` and what the user typed, as 429. */
function refuseLogin(sentence: string) {
  return (req: Request, res: Response) =>
    res.status(429).render("login", {
      title: "Log in",
      error: sentence,
      name: typeof req.body?.name === "string" ? req.body.name : "",
      next: safeNext(req.body?.next),
    });
}
