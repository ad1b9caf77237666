// Answers shared by every route: the redirect after a form, and the one error handler (JSON
// under /api/v1, an HTML page elsewhere).
import type { NextFunction, Request, Response } from "express";
import { requestLog } from "./access-log.js";
import { HttpError } from "./auth.js";
import type { AppContext } from "./context.js";

/**
 * 303 to `url` once the session is stored. express-session sends an answer's headers before
 * its save finishes, so the browser could follow the redirect and read the session before the
 * flash message (or the login) was in it.
 */
export async function seeOther(req: Request, res: Response, url: string): Promise<void> {
  const s = req.session as (typeof req.session & { userId?: number; flash?: unknown }) | undefined;
  // Only sessions worth storing: an anonymous visitor's empty session is never written.
  if (s && (s.userId !== undefined || s.flash)) await new Promise<void>((resolve, reject) => s.save((err) => (err ? reject(err) : resolve())));
  res.redirect(303, url);
}

export const API_PREFIX = "/api/v1";

export function httpStatusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  const e = err as { status?: number; statusCode?: number };
  const s = e?.status ?? e?.statusCode;
  if (typeof s === "number" && s >= 400 && s < 600) return s;
  return 500;
}

/** The sentence an error is shown with; the details of a server error stay in the log. */
function sentenceOf(err: unknown, status: number, api: boolean): string {
  if (status >= 500) return api ? "Something went wrong on our side; it has been logged. Try again in a moment." : "Something went wrong on our side. The error has been logged; try again in a moment.";
  if (err instanceof HttpError) return err.message;
  const type = (err as { type?: string })?.type;
  if (type === "entity.parse.failed") return api ? "The body is not valid JSON." : "The form could not be read.";
  if (type === "entity.too.large") return api ? "The body is too large." : "The form is too large.";
  return api ? "The request could not be read." : ((err as Error)?.message ?? "The request could not be read.");
}

function titleFor(status: number): string {
  return status === 404 ? "Not found" : status === 403 ? "Not allowed" : status === 401 ? "Log in" : status === 429 ? "Too many requests" : status >= 500 ? "Server error" : "Bad request";
}

export function errorHandler(ctx: AppContext) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const api = req.originalUrl.startsWith(API_PREFIX + "/") || req.originalUrl === API_PREFIX;
    const status = httpStatusOf(err);
    const message = sentenceOf(err, status, api);
    if (status >= 500) requestLog(req, ctx.log).error({ err }, api ? "API request failed" : "request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status);
    if (api) {
      if (status === 401) res.set("WWW-Authenticate", 'Bearer realm="lexbuilder"');
      res.json({ error: message });
      return;
    }
    if (status === 401 && req.method !== "GET") {
      seeOther(req, res, "/login").catch(() => res.redirect(303, "/login"));
      return;
    }
    // Locals may be missing when the failure came before they were set (e.g. the session store).
    const csrf = typeof res.locals.csrf === "function" ? res.locals.csrf : () => "";
    // Messages taken from the session by this request are shown here rather than lost.
    res.render("error", { title: titleFor(status), status, message, user: req.user ?? null, csrf, path: req.path, flash: res.locals.flash ?? [] }, (renderErr, html) => {
      if (renderErr) {
        requestLog(req, ctx.log).error({ err: renderErr }, "the error page failed");
        res.type("text/plain").send(`${message}\n`);
        return;
      }
      res.send(html);
    });
  };
}
