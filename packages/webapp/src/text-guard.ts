// Refuses requests whose query or body holds text PostgreSQL cannot store: a NUL character
// (text refuses it) or a lone UTF-16 surrogate, which JSON's "\ud800" escapes can produce (jsonb
// refuses it, so the audit row would fail after the change it records). Without this guard the
// first query to meet such a value answered 500.
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./auth.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a string, or null when PostgreSQL can store it. */
function textProblem(s: string): string | null {
  if (s.includes("\u0000")) return "a NUL character";
  if (LONE_SURROGATE.test(s)) return "a lone UTF-16 surrogate (half of a character)";
  return null;
}

/** The first field (depth-first, bounded) whose name or text cannot be stored, and why; or null. */
export function fieldWithBadText(value: unknown, name = "", depth = 0): { field: string; problem: string } | null {
  if (typeof value === "string") {
    const problem = textProblem(value);
    return problem ? { field: name || "the body", problem } : null;
  }
  if (depth > 8 || value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const keyProblem = textProblem(k);
    if (keyProblem) return { field: "a field name", problem: keyProblem };
    const hit = fieldWithBadText(v, Array.isArray(value) ? name : k, depth + 1);
    if (hit) return hit;
  }
  return null;
}

export function refuseUnstorableText(req: Request, _res: Response, next: NextFunction): void {
  const bad = fieldWithBadText(req.query) ?? fieldWithBadText(req.body);
  if (bad) {
    next(new HttpError(400, `The value of ${JSON.stringify(bad.field.slice(0, 40))} contains ${bad.problem}, which no field accepts; remove it and send the request again.`));
    return;
  }
  next();
}
