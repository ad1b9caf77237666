// Numbers people type: queue priority, retention bounds, build timeouts, build ids.
import { accept, refuse, trimmed, type Checked } from "./checked.js";

export const MIN_PRIORITY = -1000;
export const MAX_PRIORITY = 1000;
export const MAX_KEEP = 100_000;
/** Smallest and largest build timeout a caller may ask for, seconds. */
export const MIN_BUILD_TIMEOUT_SECONDS = 60;
export const MAX_BUILD_TIMEOUT_SECONDS = 172_800;

function wholeText(v: unknown): string {
  return typeof v === "number" ? String(v) : trimmed(v);
}

export function checkPriority(v: unknown): Checked<number> {
  const s = wholeText(v);
  const n = /^-?[0-9]{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= MIN_PRIORITY && n <= MAX_PRIORITY)) return refuse(`The priority must be a whole number between ${MIN_PRIORITY} and ${MAX_PRIORITY}.`);
  return accept(n);
}

/** How many builds, or days, keep their files; empty means keep everything (null). */
export function checkKeep(v: unknown, label: "Keep last" | "Keep days"): Checked<number | null> {
  const s = wholeText(v);
  if (s === "") return accept(null);
  if (!/^[0-9]{1,6}$/.test(s) || Number(s) < 1 || Number(s) > MAX_KEEP) {
    return refuse(`${label} must be a whole number of at least 1, or empty to keep everything.`);
  }
  return accept(Number(s));
}

export function checkBuildTimeout(v: unknown): Checked<number> {
  if (typeof v !== "number" || !Number.isInteger(v) || v < MIN_BUILD_TIMEOUT_SECONDS || v > MAX_BUILD_TIMEOUT_SECONDS) {
    return refuse(`The build timeout must be a whole number of seconds between ${MIN_BUILD_TIMEOUT_SECONDS} and ${MAX_BUILD_TIMEOUT_SECONDS}.`);
  }
  return accept(v);
}

/** A build's id as typed: 42 or #42. */
export function checkBuildId(v: unknown): Checked<number> {
  const s = trimmed(v).replace(/^#/, "");
  if (!/^[1-9][0-9]{0,14}$/.test(s)) return refuse(`${JSON.stringify(trimmed(v).slice(0, 40))} is not a build id; give a number such as 42.`);
  return accept(Number(s));
}
