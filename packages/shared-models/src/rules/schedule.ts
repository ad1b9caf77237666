// When a project builds by itself: a daily time or a five-field cron expression, in a time zone.
import cron from "node-cron";
import { ScheduleError, validateSchedule } from "../schedule.js";
import { accept, CONTROL_CHARS, refuse, text, trimmed, type Checked } from "./checked.js";

const DAILY_TIME_PATTERN = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

/** HH:MM (H:MM and HH:MM:00 are read as HH:MM); empty means no daily build (null). */
export function checkDailyTime(v: unknown): Checked<string | null> {
  const s = trimmed(v);
  if (s === "") return accept(null);
  const m = /^([0-9]{1,2}):([0-9]{2})(?::00)?$/.exec(s);
  const hhmm = m ? `${m[1]!.padStart(2, "0")}:${m[2]}` : s;
  if (!DAILY_TIME_PATTERN.test(hhmm)) return refuse("The daily time must be HH:MM on a 24-hour clock, for example 02:30.");
  return accept(hhmm);
}

/** Five cron fields, blanks collapsed; empty means none (null). */
export function checkCron(v: unknown): Checked<string | null> {
  const s = (text(v) ?? "").trim().replace(/\s+/g, " ");
  if (s === "") return accept(null);
  if (s.length > 100) return refuse("The cron expression may be at most 100 characters long.");
  if (s.split(" ").length !== 5) {
    return refuse("The cron expression needs exactly five fields: minute hour day-of-month month day-of-week (for example 30 2 * * 1-5).");
  }
  if (!cron.validate(s)) return refuse("The cron expression is not valid; check each of its five fields (for example 30 2 * * 1-5).");
  // The master's scheduler understands plain five-field cron only (no L, W or #): accept only
  // what it can run, so a saved schedule never silently fails to fire.
  try {
    validateSchedule({ kind: "cron", expression: s }, "UTC");
  } catch (err) {
    if (!(err instanceof ScheduleError)) throw err;
    return refuse(`The cron expression cannot be scheduled: ${err.message}`);
  }
  return accept(s);
}

/** An IANA time zone; empty means UTC. */
export function checkTimeZone(v: unknown): Checked<string> {
  const s = trimmed(v);
  if (s === "") return accept("UTC");
  if (s.length > 64 || CONTROL_CHARS.test(s)) return refuse("The time zone must be an IANA name such as Europe/Berlin or UTC.");
  try {
    new Intl.DateTimeFormat("en", { timeZone: s });
  } catch {
    return refuse(`${JSON.stringify(s)} is not a time zone; use an IANA name such as Europe/Berlin or UTC.`);
  }
  return accept(s);
}
