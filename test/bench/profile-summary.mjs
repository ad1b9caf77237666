#!/usr/bin/env node
// Where a profiled master spent its CPU (see fixtures/cpu-profile.cjs): self and inclusive time
// per function, optionally only inside the dispatch bursts — from the first request of a round
// to its last accepted build(), read from the master's log (BENCH_MASTER_LOG).
// Usage: profile-summary.mjs <profile> [<master log>] [top N]
import { readFileSync } from "node:fs";

const [file, logFile, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: profile-summary.mjs <profile> [<master log>] [top N]\n");
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8"));
const epoch = Number(readFileSync(`${file}.epoch`, "utf8"));

// Burst windows in wall-clock ms: per round (builds dispatched within 1 s of each other).
let windows = null;
if (logFile) {
  const lines = readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"build dispatched"')).map((l) => JSON.parse(l));
  const spans = lines.map((l) => [l.time - l.acceptedAfterMs, l.time]).sort((a, b) => a[0] - b[0]);
  windows = [];
  for (const [from, to] of spans) {
    const last = windows.at(-1);
    if (last && from <= last[1] + 1000) last[1] = Math.max(last[1], to);
    else windows.push([from, to]);
  }
}

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
const self = new Map();
const inclusive = new Map();
let total = 0;
let t = profile.startTime; // µs, the profile's own clock; epoch is its start on the wall clock
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i] ?? 0;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const wall = epoch + (t - profile.startTime) / 1000;
  if (windows && !windows.some(([a, b]) => wall >= a && wall <= b)) continue;
  const id = profile.samples[i];
  if (nodes.get(id).callFrame.functionName === "(idle)") continue;
  total += dt;
  const k = name(nodes.get(id));
  self.set(k, (self.get(k) ?? 0) + dt);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const key = name(nodes.get(cur));
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
  }
}
const list = (m) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${(v / 1000).toFixed(1).padStart(9)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`)
    .join("\n");
const span = windows ? `${windows.length} burst windows, ${windows.reduce((s, [a, b]) => s + b - a, 0).toFixed(0)} ms of wall time` : "whole run";
process.stdout.write(`${span}: ${(total / 1000).toFixed(0)} ms of CPU on the main thread (idle excluded)\n-- self\n${list(self)}\n-- inclusive\n${list(inclusive)}\n`);
