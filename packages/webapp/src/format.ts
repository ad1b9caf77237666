// Helpers the views use. Everything that returns HTML escapes what it embeds.
import { formatBytes } from "@lexbuilder/shared-models/bytes";
import { wallClockAt } from "@lexbuilder/shared-models/schedule";

export function escapeHtml(s: unknown): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function toDate(d: Date | string | null | undefined): Date | null {
  if (d === null || d === undefined || d === "") return null;
  const date = d instanceof Date ? d : new Date(d);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function relative(d: Date, now = new Date()): string {
  const s = Math.round((d.getTime() - now.getTime()) / 1000);
  const a = Math.abs(s);
  const units: [number, string][] = [
    [86400 * 365, "year"],
    [86400 * 30, "month"],
    [86400 * 7, "week"],
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
  ];
  if (a < 45) return s >= 0 && s > 5 ? "in a few seconds" : "just now";
  for (const [size, name] of units) {
    if (a >= size) {
      const n = Math.round(a / size);
      const unit = n === 1 ? name : name + "s";
      return s < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
    }
  }
  const n = Math.max(1, Math.round(a / 60));
  return s < 0 ? `${n} minute${n === 1 ? "" : "s"} ago` : `in ${n} minute${n === 1 ? "" : "s"}`;
}

/**
 * Offset and zone abbreviation of a time zone, per quarter hour of UTC (offsets are multiples
 * of 15 minutes and change at local quarter hours, hence at UTC quarter hours).
 */
const zoneCache = new Map<string, { offsetMs: number; name: string }>();
function zoneAt(ms: number, timeZone: string): { offsetMs: number; name: string } {
  const hour = Math.floor(ms / 900_000);
  const key = `${timeZone} ${hour}`;
  let z = zoneCache.get(key);
  if (!z) {
    const clock = wallClockAt(hour * 900_000, timeZone);
    z = { offsetMs: clock.offsetMs, name: clock.zoneName };
    if (zoneCache.size > 10_000) zoneCache.clear();
    zoneCache.set(key, z);
  }
  return z;
}

/** "2026-11-25 22:10:43 UTC" in the given zone. */
export function exact(d: Date, timeZone = "UTC"): string {
  const ms = d.getTime();
  const z = timeZone === "UTC" ? { offsetMs: 0, name: "UTC" } : zoneAt(ms, timeZone);
  const iso = new Date(Math.floor(ms / 1000) * 1000 + z.offsetMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} ${z.name}`;
}

/** <time> with a relative text and the exact time on hover; "—" for no time. */
export function time(d: Date | string | null | undefined, timeZone = "UTC"): string {
  const date = toDate(d);
  if (!date) return '<span class="muted">—</span>';
  return `<time datetime="${date.toISOString()}" title="${escapeHtml(exact(date, timeZone))}">${escapeHtml(relative(date))}</time>`;
}

export function bytes(n: number | string | null | undefined): string {
  const v = Number(n ?? 0);
  return Number.isFinite(v) ? formatBytes(v) : "—";
}

export function duration(start: Date | string | null | undefined, end?: Date | string | null): string {
  const a = toDate(start);
  if (!a) return "—";
  const b = toDate(end) ?? new Date();
  let s = Math.max(0, Math.round((b.getTime() - a.getTime()) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
}

/** CSS class for a build or builder state. */
export function stateClass(state: string | null | undefined): string {
  return "state state-" + String(state ?? "unknown").toLowerCase().replace(/[^a-z]/g, "");
}

/** The flash messages at the top of a page. */
export function flashes(list: readonly { kind: string; text: string }[]): string {
  return list.map((f) => `<p class="flash flash-${escapeHtml(f.kind)}" role="status">${escapeHtml(f.text)}</p>`).join("");
}

export const helpers = { time, bytes, duration, stateClass, escapeHtml, exact, flashes };
