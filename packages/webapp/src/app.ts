// Express wiring: security headers, sessions in PostgreSQL (read through the session cache),
// CSRF, access logs, routers, errors.
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response } from "express";
import session from "express-session";
import connectPgSimple from "connect-pg-simple";
import { accessLog, requestLog } from "./access-log.js";
import { fixedHeaders } from "./headers.js";
import { KNOWN_ARCHITECTURES } from "@lexbuilder/shared-models";
import { csrfToken, HttpError } from "./auth.js";
import { loadUser, withSessionUser } from "./users-loader.js";
import { helpers } from "./format.js";
import { refuseUnstorableText } from "./text-guard.js";
import type { AppContext } from "./context.js";
import { DEFAULT_CACHE_TTL_MS, WebCaches } from "./cache/web-caches.js";
import { authRouter } from "./routes/auth.js";
import { dashboardRouter } from "./routes/dashboard.js";
import { projectsRouter } from "./routes/projects.js";
import { buildsRouter } from "./routes/builds.js";
import { buildersRouter } from "./routes/builders.js";
import { usersRouter } from "./routes/users.js";
import { searchRouter } from "./routes/search.js";
import { apiRouter } from "./routes/api.js";

export const VIEWS_DIR = fileURLToPath(new URL("../views", import.meta.url));
export const PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));

export type { AppContext } from "./context.js";

export function createApp(context: AppContext): express.Express {
  const { pool, config, log } = context;
  // Made here unless given (tests give their own); without a listener nothing is cached.
  const ctx: AppContext = { ...context, caches: context.caches ?? new WebCaches(pool, context.listener, log.child({ component: "cache" }), config.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS) };
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", config.trustProxy);
  app.set("views", VIEWS_DIR);
  app.set("view engine", "ejs");
  // Compiled templates are kept (Express only does this by itself when NODE_ENV=production).
  app.set("view cache", true);
  app.locals.h = helpers;
  app.locals.tz = config.timeZone;
  app.locals.architectures = KNOWN_ARCHITECTURES;

  // Compact access lines without headers (access-log.ts); /static/ files are not logged.
  app.use(accessLog(log, { ignore: (req) => req.url.startsWith("/static/") }));

  app.use(
    fixedHeaders({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", "data:"],
          connectSrc: ["'self'"],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
        },
      },
      strictTransportSecurity: config.secureCookies,
      referrerPolicy: { policy: "same-origin" },
    }),
  );

  app.use("/static", express.static(PUBLIC_DIR, { index: false, maxAge: "1h", dotfiles: "deny", redirect: false }));

  // The JSON API authenticates with bearer tokens only (no cookies, hence no CSRF).
  app.use("/api/v1", apiRouter(ctx));

  const PgStore = connectPgSimple(session);
  app.use(
    session({
      name: "lexbuilder.sid",
      secret: config.secret,
      store: withSessionUser(new PgStore({ pool, tableName: "sessions", createTableIfMissing: false, pruneSessionInterval: 15 * 60, disableTouch: true }), pool, ctx.caches),
      resave: false,
      saveUninitialized: false,
      // Not rolling: a rolling session writes its row on every request.
      rolling: false,
      cookie: { httpOnly: true, sameSite: "lax", secure: config.secureCookies, maxAge: 14 * 24 * 3600 * 1000 },
    }),
  );
  // After a form, the redirect goes out only once the session is stored. express-session sends
  // the headers of an answer before its save finishes, so the browser could follow the redirect
  // and read the session before the flash message (or the login) was in it.
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method === "GET" || req.method === "HEAD") return next();
    const redirect = res.redirect.bind(res) as (...args: unknown[]) => void;
    res.redirect = ((...args: unknown[]) => {
      const s = req.session as (typeof req.session & { userId?: number; flash?: unknown }) | undefined;
      // Only sessions worth storing: an anonymous visitor's empty session is never written.
      if (!s || (s.userId === undefined && !s.flash)) return redirect(...args);
      s.save((err) => (err ? next(err) : redirect(...args)));
    }) as typeof res.redirect;
    next();
  });
  // Forms come by POST; a GET or HEAD has no body to read (and skipping the parser saves time).
  const forms = express.urlencoded({ extended: false, limit: "200kb", parameterLimit: 200 });
  app.use((req: Request, res: Response, next: NextFunction) => (req.method === "GET" || req.method === "HEAD" ? next() : forms(req, res, next)));
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      await loadUser(ctx, req);
      res.locals.user = req.user ?? null;
      res.locals.path = req.path;
      res.locals.csrf = () => csrfToken(req);
      res.locals.flash = req.session.flash ?? [];
      if (req.session.flash) delete req.session.flash;
      next();
    } catch (err) {
      next(err);
    }
  });
  app.use(refuseUnstorableText);

  // The routers share no path, so their order only decides how many each request walks past:
  // the most visited pages first.
  app.use(buildsRouter(ctx));
  app.use(projectsRouter(ctx));
  app.use(authRouter(ctx));
  app.use(dashboardRouter(ctx));
  app.use(buildersRouter(ctx));
  app.use(usersRouter(ctx));
  app.use(searchRouter(ctx));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, `There is no page at ${req.path}.`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = httpStatusOf(err);
    const message = status >= 500 ? "Something went wrong on our side. The error has been logged; try again in a moment." : (err as Error).message;
    if (status >= 500) requestLog(req, log).error({ err }, "request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status);
    if (status === 401 && req.method !== "GET") {
      res.redirect(303, "/login");
      return;
    }
    // Locals may be missing when the failure came before they were set (e.g. the session store).
    const csrf = typeof res.locals.csrf === "function" ? res.locals.csrf : () => "";
    // Messages taken from the session by this request are shown here rather than lost.
    res.render("error", { title: titleFor(status), status, message, user: req.user ?? null, csrf, path: req.path, flash: res.locals.flash ?? [] }, (renderErr, html) => {
      if (renderErr) {
        requestLog(req, log).error({ err: renderErr }, "the error page failed");
        res.type("text/plain").send(`${message}\n`);
        return;
      }
      res.send(html);
    });
  });
  return app;
}

export function httpStatusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  const e = err as { status?: number; statusCode?: number; type?: string };
  const s = e?.status ?? e?.statusCode;
  if (typeof s === "number" && s >= 400 && s < 600) return s;
  return 500;
}

function titleFor(status: number): string {
  return status === 404 ? "Not found" : status === 403 ? "Not allowed" : status === 401 ? "Log in" : status === 429 ? "Too many requests" : status >= 500 ? "Server error" : "Bad request";
}
