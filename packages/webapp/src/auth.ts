// Who is asking and what they may do: session users, API-token users, CSRF, roles.
//
// Roles (documented in the README):
// - viewer:  reads every page and API answer of the projects they may see.
// - builder: as viewer, plus requests, cancels and retries builds of the projects they may see,
//            creates projects (becoming a member) and edits the projects they are a member of.
// - admin:   everything, including users, builders, any project and its members.
// Private projects are visible only to their members and to admins; to everyone else they
// do not exist (404), in lists, search, diff, downloads, the API and the live log.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Application, NextFunction, Request, RequestHandler, Response } from "express";
import type { Role } from "@lexbuilder/shared-models/states";

export interface CurrentUser {
  id: number;
  name: string;
  role: Role;
}

declare module "express-session" {
  interface SessionData {
    userId?: number;
    csrf?: string;
    /** Set once after creating a token, shown on the next page only. */
    flash?: { kind: "ok" | "error"; text: string }[];
  }
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      user?: CurrentUser;
      /** "session" for browser users, "token" for API callers. */
      authVia?: "session" | "token";
    }
  }
}

export const ROLE_RANK: Record<Role, number> = { viewer: 0, builder: 1, admin: 2 };

export function hasRole(user: CurrentUser | undefined, role: Role): boolean {
  return !!user && ROLE_RANK[user.role] >= ROLE_RANK[role];
}

export function viewerOf(user: CurrentUser): { userId: number; role: Role } {
  return { userId: user.id, role: user.role };
}

/** The cookie of an anonymous visitor's forms (the login form): a random nonce, no session row. */
export const FORM_COOKIE = "lexbuilder.form";
const formKeys = new WeakMap<Application, { key: Buffer; secure: boolean | "auto" }>();

/**
 * The key that signs anonymous form tokens, from the webapp's secret, and when the form cookie
 * is Secure (as the session cookie); set once by createApp.
 */
export function useFormKey(app: Application, secret: string, secure: boolean | "auto"): void {
  formKeys.set(app, { key: createHmac("sha256", secret).update("lexbuilder anonymous form tokens").digest(), secure });
}

function formKeyOf(req: Request) {
  const found = formKeys.get(req.app);
  if (!found) throw new Error("useFormKey was not called for this app.");
  return found;
}

/**
 * The token forms carry. A logged-in user's lives in their session (synchronizer token). An
 * anonymous visitor has no session row: their token is the HMAC of a random nonce kept in a
 * cookie (signed double submit), so a visit stores nothing, and a forger needs both the cookie
 * and the server's secret, as a planted session would need.
 */
export function csrfToken(req: Request, res: Response): string {
  if (req.session?.userId !== undefined) {
    if (!req.session.csrf) req.session.csrf = randomBytes(32).toString("base64url");
    return req.session.csrf;
  }
  let nonce = formNonce(req);
  if (!nonce) {
    nonce = randomBytes(32).toString("base64url");
    const { secure } = formKeyOf(req);
    res.cookie(FORM_COOKIE, nonce, { httpOnly: true, sameSite: "lax", secure: secure === "auto" ? req.secure : secure, path: "/" });
    (req as { formNonce?: string }).formNonce = nonce;
  }
  return anonymousToken(req, nonce);
}

function formNonce(req: Request): string | null {
  const made = (req as { formNonce?: string }).formNonce;
  if (made) return made;
  const m = /(?:^|;\s*)lexbuilder\.form=([A-Za-z0-9_-]{43})(?:;|$)/.exec(req.headers.cookie ?? "");
  return m ? m[1]! : null;
}

function anonymousToken(req: Request, nonce: string): string {
  return createHmac("sha256", formKeyOf(req).key).update(nonce).digest("base64url");
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/**
 * Every state-changing form carries the token: a logged-in user's session token, or for an
 * anonymous visitor the token that matches their form cookie.
 */
export const checkCsrf: RequestHandler = (req, _res, next) => {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
  const sent = typeof req.body?._csrf === "string" ? req.body._csrf : (req.get("x-csrf-token") ?? "");
  let expected: string | undefined;
  if (req.session?.userId !== undefined) expected = req.session.csrf;
  else {
    const nonce = formNonce(req);
    if (nonce) expected = anonymousToken(req, nonce);
  }
  if (!expected || !sent || !sameToken(sent, expected)) {
    return next(new HttpError(403, "This form has expired or did not come from this site. Go back, reload the page and send it again."));
  }
  next();
};

/** Pages: anonymous users go to /login (and come back afterwards). */
export function requireLogin(req: Request, res: Response, next: NextFunction): void {
  if (req.user) return next();
  if (req.method === "GET") {
    res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
    return;
  }
  next(new HttpError(401, "Your session has ended. Log in again and repeat what you were doing."));
}

export function requireRole(role: Role): RequestHandler {
  return (req, _res, next) => {
    if (!req.user) return next(new HttpError(401, "Log in first."));
    if (!hasRole(req.user, role)) {
      return next(new HttpError(403, role === "admin" ? "Only administrators may do this." : "Your role allows reading only; ask an administrator for the builder role."));
    }
    next();
  };
}

/** Only a local path may follow a login (no //host, no scheme). */
export function safeNext(next: unknown): string {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\") || /[\r\n]/.test(next)) return "/";
  return next;
}
