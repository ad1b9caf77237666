// What asks for or filters builds: a build state or reason, an API request's Idempotency-Key.
import { BUILD_REASONS, BUILD_STATES, type BuildReason, type BuildState } from "../states.js";
import { accept, refuse, trimmed, type Checked } from "./checked.js";

export function checkBuildState(v: unknown): Checked<BuildState> {
  const s = trimmed(v).toUpperCase();
  if (!(BUILD_STATES as readonly string[]).includes(s)) return refuse(`${JSON.stringify(trimmed(v).slice(0, 40))} is not a build state; use one of ${BUILD_STATES.join(", ")}.`);
  return accept(s as BuildState);
}

/** Why a build was queued (a filter of build lists); case is ignored, as for states. */
export function checkBuildReason(v: unknown): Checked<BuildReason> {
  const s = trimmed(v).toLowerCase();
  if (!(BUILD_REASONS as readonly string[]).includes(s)) return refuse(`${JSON.stringify(trimmed(v).slice(0, 40))} is not a build reason; use one of ${BUILD_REASONS.join(", ")}.`);
  return accept(s as BuildReason);
}

/** Idempotency keys: 1 to 200 printable ASCII characters (as the column's CHECK says). */
export const IDEMPOTENCY_KEY_PATTERN = /^[!-~]{1,200}$/;

export function checkIdempotencyKey(v: unknown): Checked<string> {
  if (typeof v !== "string" || !IDEMPOTENCY_KEY_PATTERN.test(v)) {
    return refuse("The Idempotency-Key header must be 1 to 200 printable ASCII characters without spaces, e.g. a UUID.");
  }
  return accept(v);
}
