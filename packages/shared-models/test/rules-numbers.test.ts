// Number rules: priority, retention, build timeout, build id.
import { describe, expect, it } from "vitest";
import { checkBuildId, checkBuildTimeout, checkKeep, checkPriority, type Checked } from "../src/rules/index.js";

const PRIORITY = "The priority must be a whole number between -1000 and 1000.";
const KEEP_LAST = "Keep last must be a whole number of at least 1, or empty to keep everything.";
const TIMEOUT = "The build timeout must be a whole number of seconds between 60 and 172800.";
const keepLast = (v: unknown) => checkKeep(v, "Keep last");

const cases: [string, (v: unknown) => Checked<unknown>, unknown, Checked<unknown>][] = [
  ["priority", checkPriority, "-20", { value: -20 }],
  ["priority", checkPriority, 1000, { value: 1000 }],
  ["priority", checkPriority, " 5 ", { value: 5 }],
  ["priority", checkPriority, "high", { error: PRIORITY }],
  ["priority", checkPriority, "9999", { error: PRIORITY }],
  ["priority", checkPriority, "1.5", { error: PRIORITY }],
  ["priority", checkPriority, "", { error: PRIORITY }],
  ["keep", keepLast, "", { value: null }],
  ["keep", keepLast, null, { value: null }],
  ["keep", keepLast, "10", { value: 10 }],
  ["keep", keepLast, 30, { value: 30 }],
  ["keep", keepLast, "0", { error: KEEP_LAST }],
  ["keep", keepLast, "-3", { error: KEEP_LAST }],
  ["keep", keepLast, "100001", { error: KEEP_LAST }],
  ["timeout", checkBuildTimeout, 60, { value: 60 }],
  ["timeout", checkBuildTimeout, 172_800, { value: 172_800 }],
  ["timeout", checkBuildTimeout, 59, { error: TIMEOUT }],
  ["timeout", checkBuildTimeout, 172_801, { error: TIMEOUT }],
  ["timeout", checkBuildTimeout, 3600.5, { error: TIMEOUT }],
  ["timeout", checkBuildTimeout, "3600", { error: TIMEOUT }],
  ["build id", checkBuildId, "42", { value: 42 }],
  ["build id", checkBuildId, "#42", { value: 42 }],
  ["build id", checkBuildId, "0", { error: '"0" is not a build id; give a number such as 42.' }],
  ["build id", checkBuildId, "forty-two", { error: '"forty-two" is not a build id; give a number such as 42.' }],
];

describe("number rules", () => {
  it.each(cases)("%s %j", (_kind, rule, input, result) => {
    expect(rule(input)).toEqual(result);
  });
  it("names the retention bound it is about", () => {
    expect(checkKeep("x", "Keep days")).toEqual({ error: "Keep days must be a whole number of at least 1, or empty to keep everything." });
  });
});
