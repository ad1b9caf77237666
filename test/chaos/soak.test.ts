// `npm run chaos` (CHAOS_PROFILE=full, the default) and `npm run chaos:short` (CI): the soak of
// soak.ts; fails, listing the violations, when any invariant broke. CHAOS_REQUESTS, CHAOS_SEED
// and CHAOS_SLAVES override the profile; CHAOS_KEEP=1 keeps the work directory.
import { expect, test } from "vitest";
import { PROFILES, runSoak } from "./soak.js";

const base = PROFILES[process.env.CHAOS_PROFILE ?? "full"];
if (!base) throw new Error(`CHAOS_PROFILE must be one of ${Object.keys(PROFILES).join(", ")}.`);
const profile = {
  ...base,
  ...(process.env.CHAOS_REQUESTS ? { requests: Number(process.env.CHAOS_REQUESTS) } : {}),
  ...(process.env.CHAOS_SEED ? { seed: Number(process.env.CHAOS_SEED) } : {}),
  ...(process.env.CHAOS_SLAVES ? { slaves: Number(process.env.CHAOS_SLAVES) } : {}),
};

test(`chaos soak (${profile.name}: ${profile.requests} requests, ${profile.slaves} slaves, seed ${profile.seed})`, async () => {
  const report = await runSoak(profile, (line) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`));
  process.stdout.write(`\nchaos soak report:\n${JSON.stringify(report, null, 2)}\n`);
  expect(report.violations).toEqual([]);
  // Each finished build wrote exactly one outbox event for how it ended (checked per build above).
  expect(report.endEvents).toBe(report.builds);
  expect(report.requests).toBeGreaterThanOrEqual(profile.requests);
}, profile.deadlineMs + 120_000);
