// Schedule rules: daily time, cron expression, time zone.
import { describe, expect, it } from "vitest";
import { checkCron, checkDailyTime, checkTimeZone } from "../src/rules/schedule.js";
import type { Checked } from "../src/rules/index.js";

const DAILY = "The daily time must be HH:MM on a 24-hour clock, for example 02:30.";
const FIVE = "The cron expression needs exactly five fields: minute hour day-of-month month day-of-week (for example 30 2 * * 1-5).";
const CRON_INVALID = "The cron expression is not valid; check each of its five fields (for example 30 2 * * 1-5).";

const cases: [string, (v: unknown) => Checked<unknown>, unknown, Checked<unknown>][] = [
  ["daily", checkDailyTime, "", { value: null }],
  ["daily", checkDailyTime, "02:30", { value: "02:30" }],
  ["daily", checkDailyTime, "2:30", { value: "02:30" }],
  ["daily", checkDailyTime, "23:59:00", { value: "23:59" }],
  ["daily", checkDailyTime, "25:00", { error: DAILY }],
  ["daily", checkDailyTime, "12:60", { error: DAILY }],
  ["daily", checkDailyTime, "noon", { error: DAILY }],
  ["cron", checkCron, "", { value: null }],
  ["cron", checkCron, "30  2 * * 1-5", { value: "30 2 * * 1-5" }],
  ["cron", checkCron, "0 30 2 * * 1-5", { error: FIVE }],
  ["cron", checkCron, "every day", { error: FIVE }],
  ["cron", checkCron, "61 2 * * *", { error: CRON_INVALID }],
  ["cron", checkCron, "0 ".repeat(60), { error: "The cron expression may be at most 100 characters long." }],
  ["time zone", checkTimeZone, "", { value: "UTC" }],
  ["time zone", checkTimeZone, "Europe/Berlin", { value: "Europe/Berlin" }],
  ["time zone", checkTimeZone, "Mars/Olympus", { error: '"Mars/Olympus" is not a time zone; use an IANA name such as Europe/Berlin or UTC.' }],
  ["time zone", checkTimeZone, "x".repeat(65), { error: "The time zone must be an IANA name such as Europe/Berlin or UTC." }],
];

describe("schedule rules", () => {
  it.each(cases)("%s %j", (_kind, rule, input, result) => {
    expect(rule(input)).toEqual(result);
  });

  it.each(["0 0 L * *", "0 0 * * 1#2", "0 0 15W * *"])("refuses %j, which the scheduler cannot run", (expression) => {
    expect(checkCron(expression).error).toMatch(/^The cron expression /);
  });
});
