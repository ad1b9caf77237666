// Small helpers the routers share: ids from paths, form fields, the viewer.
import type { Request } from "express";
import type { Viewer } from "@lexbuilder/shared-models/db";
import { checkBuildId } from "@lexbuilder/shared-models/rules";
import { HttpError, type CurrentUser } from "../auth.js";

/** A positive id from a path or query (42 or #42, as the build id rule reads it), or null. */
export function parseId(value: unknown): number | null {
  // Only text: a repeated query parameter (an array) is no id.
  return typeof value === "string" ? (checkBuildId(value).value ?? null) : null;
}

export function idOr404(value: unknown, what: string): number {
  const id = parseId(value);
  if (id === null) throw new HttpError(404, `There is no ${what} ${String(value).slice(0, 40)}.`);
  return id;
}

export function viewerOf(req: Request): Viewer {
  const u = req.user;
  return u ? { userId: u.id, role: u.role } : { userId: null, role: null };
}

export function me(req: Request): CurrentUser {
  if (!req.user) throw new HttpError(401, "Log in first.");
  return req.user;
}

/** A trimmed string field from a form or query (first value if repeated), "" if absent. */
export function field(source: unknown, name: string, max = 10_000): string {
  const obj = (source ?? {}) as Record<string, unknown>;
  let v = obj[name];
  if (Array.isArray(v)) v = v[0];
  return typeof v === "string" ? v.trim().slice(0, max) : "";
}

export function checkbox(source: unknown, name: string): boolean {
  const v = field(source, name, 10);
  return v === "on" || v === "true" || v === "1" || v === "yes";
}

export function flash(req: Request, kind: "ok" | "error", text: string): void {
  (req.session.flash ??= []).push({ kind, text });
}
