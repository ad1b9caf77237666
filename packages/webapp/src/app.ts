// Express wiring: security headers, sessions in PostgreSQL (read through the session cache),
// CSRF, access logs, routers, errors.
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response } from "express";
import session from "express-session";
import connectPgSimple from "connect-pg-simple";
import { accessLog } from "./access-log.js";
import { fixedHeaders, strictTransportSecurity } from "./headers.js";
import { KNOWN_ARCHITECTURES } from "@lexbuilder/shared-models/rules";
import { csrfToken, HttpError, useFormKey } from "./auth.js";
import { errorHandler } from "./respond.js";
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
import { notificationsRouter } from "./routes/notifications.js";
import { feedRouter } from "./routes/feed.js";

export const VIEWS_DIR = fileURLToPath(new URL("../views", import.meta.url));
export const PUBLIC_DIR = fileURLToPath(new URL("../public", import.meta.url));

export type { AppContext } from "./context.js";

export function createApp(context: AppContext): express.Express {
  const { pool, config, log } = context;
  // Made here unless given (tests give their own); without a listener nothing is cached.
  const ctx: AppContext = { ...context, caches: context.caches ?? new WebCaches(pool, context.listener, log.child({ component: "cache" }), config.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS) };
  const app = express();
  app.disable("x-powered-by");
  useFormKey(app, config.secret, config.secureCookies);
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
      strictTransportSecurity: false,
      referrerPolicy: { policy: "same-origin" },
    }),
  );

  app.use(strictTransportSecurity(config.secureCookies));

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
  // Forms come by POST; a GET or HEAD has no body to read (and skipping the parser saves time).
  const forms = express.urlencoded({ extended: false, limit: "200kb", parameterLimit: 200 });
  app.use((req: Request, res: Response, next: NextFunction) => (req.method === "GET" || req.method === "HEAD" ? next() : forms(req, res, next)));
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    try {
      await loadUser(ctx, req);
      res.locals.user = req.user ?? null;
      res.locals.path = req.path;
      res.locals.csrf = () => csrfToken(req, res);
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
  app.use(notificationsRouter(ctx));
  app.use(feedRouter(ctx));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new HttpError(404, `There is no page at ${req.path}.`));
  });
  app.use(errorHandler(ctx));
  return app;
}

