// The children's pino JSON lines, one readable line each, for the terminal.

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
const SKIP = new Set(["level", "time", "pid", "hostname", "name", "msg", "v"]);

function short(value: unknown): string {
  const s = typeof value === "string" ? value : JSON.stringify(value);
  return s.length > 200 ? s.slice(0, 197) + "..." : s;
}

/** One readable line for a pino JSON entry; any other line comes back unchanged. */
export function prettyLine(line: string): string {
  if (!line.startsWith("{")) return line;
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof entry !== "object" || entry === null) return line;
  const e = entry as Record<string, unknown>;
  if (typeof e.level !== "number") return line;
  const time = new Date(typeof e.time === "number" ? e.time : Date.now()).toISOString().slice(11, 19);
  const parts = [time, LEVELS[e.level] ?? String(e.level), typeof e.msg === "string" ? e.msg : ""];
  for (const [k, v] of Object.entries(e)) {
    if (SKIP.has(k) || v === undefined) continue;
    const o = (v && typeof v === "object" ? v : {}) as Record<string, unknown>;
    if (k === "req" && v && typeof v === "object") parts.push(`${String(o.method)} ${String(o.url)}`);
    else if (k === "res" && v && typeof v === "object") parts.push(`-> ${String(o.statusCode)}`);
    else if (k === "err" && v && typeof v === "object") parts.push(`err=${short(o.message ?? v)}`);
    else parts.push(`${k}=${short(v)}`);
  }
  return parts.filter((p) => p !== "").join(" ");
}
