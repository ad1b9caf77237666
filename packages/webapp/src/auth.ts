// Who is asking and what they may do: session users, API-token users, CSRF, roles.
//
// Roles (documented in the README):
// - viewer:  reads every page and API answer of the projects they may see.
// - builder: as viewer, plus requests, cancels and retries builds of the projects they may see,
//            creates projects (becoming a member) and edits the projects they are a member of.
// - admin:   everything, including users, builders, any project and its members.
// Private projects are visible only to their members and to admins; to everyone else they
// do not exist (404), in lists, search, diff, downloads, the API and the live log.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
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

/** The session's CSRF token, created on first use. */
export function csrfToken(req: Request): string {
  if (!req.session.csrf) req.session.csrf = randomBytes(32).toString("base64url");
  return req.session.csrf;
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

/** Synchronizer token: every state-changing form carries the session's token. */
export const checkCsrf: RequestHandler = (req, _res, next) => {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
  const sent = typeof req.body?._csrf === "string" ? req.body._csrf : (req.get("x-csrf-token") ?? "");
  const expected = req.session?.csrf;
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
