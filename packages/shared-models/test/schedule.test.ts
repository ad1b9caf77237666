import { describe, expect, it } from "vitest";
import {
  cronExpressionOf,
  lastRunAtOrBefore,
  missedSlot,
  nextRunAfter,
  parseCronExpression,
  ScheduleError,
  scheduleOf,
  validateSchedule,
} from "../src/schedule.js";

const d = (iso: string) => new Date(iso);

describe("nextRunAfter", () => {
  it("gives today's slot before the time and tomorrow's after it, in UTC", () => {
    const s = { kind: "daily", at: "02:30" } as const;
    expect(nextRunAfter(s, "UTC", d("2026-03-01T01:00:00Z"))?.toISOString()).toBe("2026-03-01T02:30:00.000Z");
    expect(nextRunAfter(s, "UTC", d("2026-03-01T02:30:00Z"))?.toISOString()).toBe("2026-03-02T02:30:00.000Z");
  });

  it("reads the daily time in the project's time zone, across a DST change", () => {
    const s = { kind: "daily", at: "02:30" } as const;
    // Paris: CET (+1) until 2026-03-29 02:00, then CEST (+2); 02:30 does not exist that day.
    expect(nextRunAfter(s, "Europe/Paris", d("2026-03-27T12:00:00Z"))?.toISOString()).toBe("2026-03-28T01:30:00.000Z");
    expect(nextRunAfter(s, "Europe/Paris", d("2026-03-28T12:00:00Z"))?.toISOString()).toBe("2026-03-30T00:30:00.000Z");
    // New York, EDT (-4).
    expect(nextRunAfter({ kind: "daily", at: "23:15" }, "America/New_York", d("2026-07-01T00:00:00Z"))?.toISOString()).toBe(
      "2026-07-01T03:15:00.000Z",
    );
  });

  it("takes the first of two 01:30s when the clocks go back", () => {
    // Paris 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice, the first at 00:30Z.
    expect(nextRunAfter({ kind: "daily", at: "02:30" }, "Europe/Paris", d("2026-10-24T12:00:00Z"))?.toISOString()).toBe(
      "2026-10-25T00:30:00.000Z",
    );
  });

  it("follows cron expressions: steps, lists, weekdays, names", () => {
    const every15 = { kind: "cron", expression: "*/15 * * * *" } as const;
    expect(nextRunAfter(every15, "UTC", d("2026-03-01T10:07:12Z"))?.toISOString()).toBe("2026-03-01T10:15:00.000Z");
    const weekdays = { kind: "cron", expression: "0 6 * * mon-fri" } as const;
    // 2026-03-06 is a Friday → next is Monday the 9th.
    expect(nextRunAfter(weekdays, "UTC", d("2026-03-06T07:00:00Z"))?.toISOString()).toBe("2026-03-09T06:00:00.000Z");
    const sunday7 = { kind: "cron", expression: "0 0 * * 7" } as const;
    expect(nextRunAfter(sunday7, "UTC", d("2026-03-02T00:00:00Z"))?.toISOString()).toBe("2026-03-08T00:00:00.000Z");
    const janFirst = { kind: "cron", expression: "5 4 1 jan *" } as const;
    expect(nextRunAfter(janFirst, "UTC", d("2026-03-02T00:00:00Z"))?.toISOString()).toBe("2027-01-01T04:05:00.000Z");
  });

  it("returns null for a date that never comes", () => {
    expect(nextRunAfter({ kind: "cron", expression: "0 0 30 2 *" }, "UTC", d("2026-01-01T00:00:00Z"))).toBeNull();
  });
});

describe("lastRunAtOrBefore and missedSlot", () => {
  const s = { kind: "daily", at: "03:00" } as const;
  it("finds the latest slot at or before a time", () => {
    expect(lastRunAtOrBefore(s, "UTC", d("2026-03-05T03:00:00Z"))?.toISOString()).toBe("2026-03-05T03:00:00.000Z");
    expect(lastRunAtOrBefore(s, "UTC", d("2026-03-05T02:59:59Z"))?.toISOString()).toBe("2026-03-04T03:00:00.000Z");
    expect(lastRunAtOrBefore({ kind: "cron", expression: "*/10 * * * *" }, "UTC", d("2026-03-05T10:29:59Z"))?.toISOString()).toBe(
      "2026-03-05T10:20:00.000Z",
    );
  });

  it("owes exactly one catch-up slot after downtime, the latest one", () => {
    // Down from the 1st to the 5th: four slots missed, one build owed, for the 5th.
    expect(missedSlot(s, "UTC", d("2026-03-01T03:00:00Z"), d("2026-03-05T12:00:00Z"))?.toISOString()).toBe("2026-03-05T03:00:00.000Z");
    // Nothing missed: the last run is the latest slot.
    expect(missedSlot(s, "UTC", d("2026-03-05T03:00:00Z"), d("2026-03-05T12:00:00Z"))).toBeNull();
    // A schedule that never ran owes nothing.
    expect(missedSlot(s, "UTC", null, d("2026-03-05T12:00:00Z"))).toBeNull();
  });
});

describe("parsing", () => {
  it("refuses malformed schedules with a sentence", () => {
    for (const bad of ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *", "a b c d e", "0 0 L * *"]) {
      expect(() => parseCronExpression(bad), bad).toThrow(ScheduleError);
    }
    expect(() => cronExpressionOf({ kind: "daily", at: "25:00" })).toThrow(/HH:MM/);
    expect(() => validateSchedule({ kind: "daily", at: "02:00" }, "Mars/Olympus")).toThrow(/time zone/);
  });

  it("turns a daily time into node-cron's expression and reads project rows", () => {
    expect(cronExpressionOf({ kind: "daily", at: "07:05" })).toBe("5 7 * * *");
    expect(cronExpressionOf({ kind: "daily", at: "07:05:00" })).toBe("5 7 * * *");
    expect(scheduleOf({ schedule_daily_at: "07:05", schedule_cron: null })).toEqual({ kind: "daily", at: "07:05" });
    expect(scheduleOf({ schedule_daily_at: null, schedule_cron: "0 1 * * *" })).toEqual({ kind: "cron", expression: "0 1 * * *" });
    expect(scheduleOf({ schedule_daily_at: null, schedule_cron: null })).toBeNull();
    expect(scheduleOf({ scheduleDailyAt: "02:30", scheduleCron: null })).toEqual({ kind: "daily", at: "02:30" });
  });
});
