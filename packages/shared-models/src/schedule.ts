// Daily-build schedules: a time of day ("HH:MM") or a five-field cron expression, read in an
// IANA time zone. The master fires them with node-cron; this module computes the slots
// themselves (next run for the console, the last slot for catch-up) without any dependency,
// with the same rules node-cron applies: day-of-month AND day-of-week must both match, a
// local time that does not exist (the spring-forward gap) is skipped, an ambiguous one (the
// autumn overlap) is taken at its first occurrence.

export type Schedule =
  | { kind: "daily"; at: string }
  | { kind: "cron"; expression: string };

export class ScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScheduleError";
  }
}

interface CronFields {
  minutes: number[];
  hours: number[];
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
}

const MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELD_SPECS = [
  { name: "minute", min: 0, max: 59, names: null },
  { name: "hour", min: 0, max: 23, names: null },
  { name: "day of month", min: 1, max: 31, names: null },
  { name: "month", min: 1, max: 12, names: MONTH_NAMES },
  { name: "day of week", min: 0, max: 7, names: DAY_NAMES },
] as const;

function parseValue(text: string, spec: (typeof FIELD_SPECS)[number]): number {
  const lower = text.toLowerCase();
  if (spec.names) {
    const i = (spec.names as readonly string[]).indexOf(lower);
    if (i >= 0) return spec.name === "month" ? i + 1 : i;
  }
  if (!/^[0-9]{1,2}$/.test(text)) throw new ScheduleError(`"${text}" is not a valid ${spec.name} in the cron expression.`);
  const n = Number(text);
  if (n < spec.min || n > spec.max) {
    throw new ScheduleError(`The ${spec.name} ${n} is out of range (${spec.min}–${spec.max}) in the cron expression.`);
  }
  return n;
}

function parseField(text: string, spec: (typeof FIELD_SPECS)[number]): number[] {
  const values = new Set<number>();
  for (const part of text.split(",")) {
    if (part === "") throw new ScheduleError(`The ${spec.name} field of the cron expression has an empty list item.`);
    const [rangeText, stepText, extra] = part.split("/");
    if (extra !== undefined) throw new ScheduleError(`"${part}" is not a valid ${spec.name} step in the cron expression.`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]{1,2}$/.test(stepText) || Number(stepText) === 0) {
        throw new ScheduleError(`"${stepText}" is not a valid step for the ${spec.name} in the cron expression.`);
      }
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (rangeText === "*" || rangeText === "?") {
      lo = spec.min;
      hi = spec.name === "day of week" ? 6 : spec.max;
    } else if (rangeText!.includes("-")) {
      const [a, b, more] = rangeText!.split("-");
      if (more !== undefined || a === undefined || b === undefined) {
        throw new ScheduleError(`"${rangeText}" is not a valid ${spec.name} range in the cron expression.`);
      }
      lo = parseValue(a, spec);
      hi = parseValue(b, spec);
      if (hi < lo) throw new ScheduleError(`The ${spec.name} range "${rangeText}" runs backwards in the cron expression.`);
    } else {
      lo = parseValue(rangeText!, spec);
      hi = stepText !== undefined ? (spec.name === "day of week" ? 6 : spec.max) : lo;
    }
    for (let v = lo; v <= hi; v += step) values.add(spec.name === "day of week" && v === 7 ? 0 : v);
  }
  return [...values].sort((x, y) => x - y);
}

/** Parses a five-field cron expression (minute hour day-of-month month day-of-week). */
export function parseCronExpression(expression: string): CronFields {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5 || parts[0] === "") {
    throw new ScheduleError(
      `A cron expression has five fields (minute hour day-of-month month day-of-week), for example "30 2 * * *"; "${expression}" has ${parts[0] === "" ? 0 : parts.length}.`,
    );
  }
  const [mi, h, d, mo, w] = parts.map((p, i) => parseField(p, FIELD_SPECS[i]!));
  return { minutes: mi!, hours: h!, days: new Set(d), months: new Set(mo), weekdays: new Set(w) };
}

/** Parses "HH:MM" or "HH:MM:SS" (seconds must be 0; PostgreSQL's `time` prints them). */
export function parseDailyTime(at: string): { hour: number; minute: number } {
  const m = /^([01]?[0-9]|2[0-3]):([0-5][0-9])(?::00)?$/.exec(at.trim());
  if (!m) throw new ScheduleError(`"${at}" is not a time of day; write it as HH:MM, for example 02:30.`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Checks a schedule and time zone; throws a ScheduleError with a sentence when wrong. */
export function validateSchedule(schedule: Schedule, tz: string): void {
  if (!isValidTimeZone(tz)) throw new ScheduleError(`"${tz}" is not a time zone; use a name such as UTC or Europe/Paris.`);
  toCron(schedule);
}

/** The cron expression node-cron should run for a schedule. */
export function cronExpressionOf(schedule: Schedule): string {
  if (schedule.kind === "daily") {
    const { hour, minute } = parseDailyTime(schedule.at);
    return `${minute} ${hour} * * *`;
  }
  parseCronExpression(schedule.expression);
  return schedule.expression.trim();
}

function toCron(schedule: Schedule): CronFields {
  return parseCronExpression(cronExpressionOf(schedule));
}

/**
 * A project's schedule → a Schedule, or null when it has none. Takes a Project
 * (scheduleDailyAt/scheduleCron) or a raw row (schedule_daily_at/schedule_cron).
 */
export function scheduleOf(row: {
  scheduleDailyAt?: string | null;
  scheduleCron?: string | null;
  schedule_daily_at?: string | null;
  schedule_cron?: string | null;
}): Schedule | null {
  const cron = row.scheduleCron ?? row.schedule_cron;
  const daily = row.scheduleDailyAt ?? row.schedule_daily_at;
  if (cron) return { kind: "cron", expression: cron };
  if (daily) return { kind: "daily", at: daily };
  return null;
}

// --- time-zone arithmetic (Intl only) ----------------------------------------------------

interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      timeZoneName: "short",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** A time zone's clock at one instant: what it shows, its offset from UTC and the zone's short name. */
export interface WallClock extends LocalParts {
  second: number;
  /** local = utc + offsetMs */
  offsetMs: number;
  zoneName: string;
}

export function wallClockAt(ms: number, tz: string): WallClock {
  const out: Record<string, number> = {};
  let zoneName = tz;
  for (const p of formatter(tz).formatToParts(new Date(ms))) {
    if (p.type === "timeZoneName") zoneName = p.value;
    else if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  const local = { year: out.year!, month: out.month!, day: out.day!, hour: out.hour! % 24, minute: out.minute!, second: out.second! };
  const asUtc = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  return { ...local, offsetMs: asUtc - Math.floor(ms / 1000) * 1000, zoneName };
}

/** The instant of a local wall-clock time, or null when that time does not exist (DST gap). */
function localToInstant(p: LocalParts, tz: string): number | null {
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
  const candidates = new Set<number>();
  for (const probe of [wall - 36 * 3600_000, wall, wall + 36 * 3600_000]) candidates.add(wall - wallClockAt(probe, tz).offsetMs);
  const matches = [...candidates]
    .filter((t) => {
      const q = wallClockAt(t, tz);
      return q.year === p.year && q.month === p.month && q.day === p.day && q.hour === p.hour && q.minute === p.minute;
    })
    .sort((a, b) => a - b);
  return matches[0] ?? null;
}

function addDays(y: number, m: number, d: number, n: number): { year: number; month: number; day: number } {
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

const SEARCH_DAYS = 366 * 8;

function dayMatches(c: CronFields, y: number, m: number, d: number): boolean {
  if (!c.months.has(m) || !c.days.has(d)) return false;
  return c.weekdays.has(new Date(Date.UTC(y, m - 1, d)).getUTCDay());
}

/**
 * The first slot strictly after `after`, or null when the schedule never fires again within
 * eight years (e.g. "0 0 30 2 *").
 */
export function nextRunAfter(schedule: Schedule, tz: string, after: Date): Date | null {
  const c = toCron(schedule);
  const base = wallClockAt(after.getTime(), tz);
  let day = { year: base.year, month: base.month, day: base.day };
  // Start a day early: a local date can map to instants on both sides of `after` around DST.
  day = addDays(day.year, day.month, day.day, -1);
  for (let i = 0; i < SEARCH_DAYS; i++) {
    if (dayMatches(c, day.year, day.month, day.day)) {
      for (const hour of c.hours) {
        for (const minute of c.minutes) {
          const t = localToInstant({ ...day, hour, minute }, tz);
          if (t !== null && t > after.getTime()) return new Date(t);
        }
      }
    }
    day = addDays(day.year, day.month, day.day, 1);
  }
  return null;
}

/** The latest slot at or before `at`, or null when there was none within eight years. */
export function lastRunAtOrBefore(schedule: Schedule, tz: string, at: Date): Date | null {
  const c = toCron(schedule);
  const base = wallClockAt(at.getTime(), tz);
  let day = addDays(base.year, base.month, base.day, 1);
  const hoursDesc = [...c.hours].reverse();
  const minutesDesc = [...c.minutes].reverse();
  for (let i = 0; i < SEARCH_DAYS; i++) {
    if (dayMatches(c, day.year, day.month, day.day)) {
      for (const hour of hoursDesc) {
        for (const minute of minutesDesc) {
          const t = localToInstant({ ...day, hour, minute }, tz);
          if (t !== null && t <= at.getTime()) return new Date(t);
        }
      }
    }
    day = addDays(day.year, day.month, day.day, -1);
  }
  return null;
}

/**
 * What a (re)starting scheduler owes: the one slot to catch up on, if a slot passed after the
 * last run and at or before now. Many missed slots still give one build (the latest slot).
 */
export function missedSlot(schedule: Schedule, tz: string, lastRun: Date | null, now: Date): Date | null {
  if (lastRun === null) return null;
  const slot = lastRunAtOrBefore(schedule, tz, now);
  return slot !== null && slot.getTime() > lastRun.getTime() ? slot : null;
}
