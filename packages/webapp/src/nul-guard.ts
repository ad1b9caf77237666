// Refuses requests whose query or body holds a NUL character: PostgreSQL text cannot store one,
// so it would otherwise surface as a 500 from whichever query met it first.
import type { NextFunction, Request, Response } from "express";
import { HttpError } from "./auth.js";

/** The name of the first field (depth-first, bounded) whose text contains U+0000, or null. */
export function fieldWithNul(value: unknown, name = "", depth = 0): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? name || "the body" : null;
  if (depth > 8 || value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.includes("\u0000")) return "a field name";
    const hit = fieldWithNul(v, Array.isArray(value) ? name : k, depth + 1);
    if (hit) return hit;
  }
  return null;
}

export function refuseNul(req: Request, _res: Response, next: NextFunction): void {
  const where = fieldWithNul(req.query) ?? fieldWithNul(req.body);
  if (where) {
    next(new HttpError(400, `The value of ${JSON.stringify(where.slice(0, 40))} contains a NUL character, which no field accepts; remove it and send the request again.`));
    return;
  }
  next();
}
