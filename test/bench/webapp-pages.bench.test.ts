// Webapp benchmarks (npm run bench): with 100k builds and a 50 MB log, the builds list, a
// project page and a build detail page — p97.5 latency (autocannon's nearest percentile at or
// above p95) and throughput, against an Express hello-world route measured in the same run;
// and how long a log line written on the slave takes to reach a browser's live log (real
// slave, master and webapp processes). Prints a table; each row checks its goal. Hello world is
// measured before and after the pages (the machine is shared; shares use the mean of the two).
import { execSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appendLog,
  createProject,
  createUser,
  insertManifest,
  requestBuild,
} from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { createTestDatabase, driveBuild, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { fakeConf, makeConfigRepo, startSlave, type Slave } from "../../packages/slave/test/helpers.js";
import { addBuilderViaCli, admin, startMaster, tempDir, waitUntil, type MasterProcess } from "../fullstack-helpers.js";
import { startWebapp, type WebappProcess } from "../support/browser.js";

const BUILDS = Number(process.env.BENCH_BUILDS ?? 100_000);
const LOG_MB = Number(process.env.BENCH_LOG_MB ?? 50);
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 10;
const PASSWORD = "benchmark password";

const rows: string[][] = [];
function report(metric: string, value: string, goal: string, ok: boolean): void {
  rows.push([metric, value, goal, ok ? "yes" : "NO"]);
}

afterAll(() => {
  if (!rows.length) return;
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[["metric", "measured", "goal", "met"], ...rows].map((r) => r[i]!.length)));
  const line = (r: string[]) => "| " + r.map((c, i) => c.padEnd(widths[i]!)).join(" | ") + " |";
  const table = [line(["metric", "measured", "goal", "met"]), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
  process.stdout.write(`\nWebapp benchmarks (${new Date().toISOString()}, ${execSync("nproc").toString().trim()} cores, ${BUILDS} builds, ${LOG_MB} MB log):\n${table}\n\n`);
});

async function login(base: string, name: string): Promise<string> {
  const first = await fetch(`${base}/login`);
  const cookie = first.headers.getSetCookie()[0]!.split(";")[0]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await first.text())![1]!;
  const res = await fetch(`${base}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ _csrf: csrf, name, password: PASSWORD }).toString(),
  });
  expect(res.status).toBe(303);
  return res.headers.getSetCookie()[0]!.split(";")[0]!;
}

function cannon(url: string, cookie?: string, duration = DURATION): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, headers: cookie ? { cookie } : {} }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** A hello-world Express 5 app in its own process, as the webapp runs in its own. */
async function startHello(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  // /bytes/N: a fixed body of N bytes, the cost of sending a page of that size and nothing else.
  const script = `import express from "express"; const app = express(); const bodies = new Map();
    app.get("/", (_q, r) => r.send("hello world"));
    app.get("/bytes/:n", (q, r) => { const n = Math.min(Number(q.params.n) || 0, 1 << 20); if (!bodies.has(n)) bodies.set(n, "x".repeat(n)); r.type("html").send(bodies.get(n)); });
    app.listen(${port}, "127.0.0.1", () => console.log("ready"));`;
  const proc = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd: join(import.meta.dirname, "..", "..", "packages", "webapp"), stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => proc.stdout!.once("data", () => resolve()));
  return { url: `http://127.0.0.1:${port}/`, proc };
}

describe("page latency and throughput with 100k builds and a 50 MB log", () => {
  let db: TestDatabase;
  let webapp: WebappProcess;
  let hello: { url: string; proc: ChildProcess };
  let bigBuild = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    await createUser(db.pool, { name: "bench", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    const projects = [];
    for (let i = 0; i < 20; i++) {
      projects.push(await createProject(db.pool, { name: `p${i}`, configUrl: "https://git.example.org/c.git", architecture: "amd64", scheduleDailyAt: "02:30", private: i % 5 === 4 }));
    }
    // Bulk fixture rows (test data only; the console itself never writes SQL): finished
    // builds spread over the projects and over the last year.
    await db.pool.query(
      `INSERT INTO builds (project_id, state, reason, config_ref, architecture, attempt, config_revision, slave_result,
                           requested_at, dispatched_at, started_at, finished_at, failure_kind, failure_message)
       SELECT p.id, CASE WHEN g % 10 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END, 'daily', 'main', 'amd64', 1, md5(g::text) || '01234567',
              CASE WHEN g % 10 = 0 THEN 'BUILDFAIL' ELSE 'OK' END,
              now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval, now() - (g || ' minutes')::interval,
              now() - (g || ' minutes')::interval + interval '4 minutes',
              CASE WHEN g % 10 = 0 THEN 'build' END, CASE WHEN g % 10 = 0 THEN 'lb build failed' END
         FROM generate_series(1, $1::int) g JOIN projects p ON p.name = 'p' || (g % 20)`,
      [BUILDS],
    );
    await db.pool.query("ANALYZE");
    // The build with the big log: a real one, through the real functions.
    const b = await requestBuild(db.pool, { projectId: projects[0]!.id, reason: "manual", configRef: "big-log", priority: 1_000_000 });
    await driveBuild(db.pool, b.id, "BUILDING");
    const line = Buffer.from("I: Retrieving some package from the mirror, a typical line of a live-build log\n");
    const chunk = Buffer.concat(Array.from({ length: Math.ceil((1024 * 1024) / line.length) }, () => line)).subarray(0, 1024 * 1024);
    let off = 0;
    for (let i = 0; i < LOG_MB; i++) off = (await appendLog(db.pool, b.id, off, chunk))!;
    await driveBuild(db.pool, b.id, "COLLECTING");
    await insertManifest(db.pool, b.id, Array.from({ length: 400 }, (_, i) => ({ package: `package-${i}`, version: `1.${i}-1` })));
    await driveBuild(db.pool, b.id, "SUCCEEDED");
    bigBuild = b.id;
    // BENCH_WEBAPP_NODE_OPTIONS (e.g. --import a profiler) goes to the webapp process only;
    // BENCH_WEBAPP_LOG_LEVEL=info measures the pages with their access lines written.
    const nodeOptions = process.env.BENCH_WEBAPP_NODE_OPTIONS;
    const logLevel = process.env.BENCH_WEBAPP_LOG_LEVEL ?? "warn";
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: tempDir("bench-artifacts"), env: { LOG_LEVEL: logLevel, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) } });
    hello = await startHello();
  }, 30 * 60_000);

  afterAll(async () => {
    hello?.proc.kill();
    await webapp?.stop();
    await db?.drop();
  });

  it("builds list, project page and build detail against hello world", async () => {
    const cookie = await login(webapp.url, "bench");
    // The machine is shared: hello world is measured before and after the pages, and each
    // page's share is taken against the mean of the two (both are shown).
    // Every server gets the same 2 s of warm-up on every measured route first, so the route
    // measured first does not pay alone for the JIT compiling the code all routes share.
    for (const url of [hello.url, ...["/builds", "/projects/p1", `/builds/${bigBuild}`].map((p) => webapp.url + p)]) await cannon(url, url.startsWith(webapp.url) ? cookie : undefined, 2);
    const before = await cannon(hello.url);
    report("hello world (Express 5), before", `${before.requests.average.toFixed(0)} req/s, p97.5 ${before.latency.p97_5} ms`, "baseline", before.non2xx === 0);
    const results: [string, autocannon.Result][] = [];
    for (const [label, path] of [
      ["builds list (/builds)", "/builds"],
      ["project page (/projects/p1)", "/projects/p1"],
      [`build detail, ${LOG_MB} MB log`, `/builds/${bigBuild}`],
      ["API builds list", null],
    ] as const) {
      let result: autocannon.Result;
      let token: string | undefined;
      if (path === null) {
        token = (await admin(db.url, ["create-token", "bench"])).stdout.trim().split(/\s+/).pop()!;
        result = await new Promise((resolve, reject) =>
          autocannon({ url: `${webapp.url}/api/v1/builds?limit=50`, connections: CONNECTIONS, duration: DURATION, headers: { authorization: `Bearer ${token}` } }, (e, r) => (e ? reject(e) : resolve(r))),
        );
      } else {
        result = await cannon(webapp.url + path, cookie);
      }
      expect(result.non2xx).toBe(0);
      expect(result.errors).toBe(0);
      // The size of one answer, for the reader (the bytes are a good part of a page's cost).
      const one = await fetch(webapp.url + (path ?? "/api/v1/builds?limit=50"), { headers: path === null ? { authorization: `Bearer ${token!}` } : { cookie } });
      results.push([`${label}, ${((await one.arrayBuffer()).byteLength / 1024).toFixed(0)} KiB`, result]);
    }
    const page = await fetch(`${webapp.url}/builds/${bigBuild}`, { headers: { cookie } });
    const html = await page.text();
    // What sending that many bytes costs by itself (informational: no goal).
    const bytes = await cannon(`${hello.url}bytes/${Buffer.byteLength(html)}`);
    const after = await cannon(hello.url);
    report("hello world (Express 5), after", `${after.requests.average.toFixed(0)} req/s, p97.5 ${after.latency.p97_5} ms`, "baseline", after.non2xx === 0);
    const baseline = (before.requests.average + after.requests.average) / 2;
    for (const [label, result] of results) {
      const share = result.requests.average / baseline;
      report(label, `${result.requests.average.toFixed(0)} req/s (${(share * 100).toFixed(1)} %), p97.5 ${result.latency.p97_5} ms`, "≥ 40 % of hello world", share >= 0.4);
    }
    const bytesShare = bytes.requests.average / baseline;
    report(`Express sending a fixed ${(html.length / 1024).toFixed(0)} KiB body (reference)`, `${bytes.requests.average.toFixed(0)} req/s (${(bytesShare * 100).toFixed(1)} %), p97.5 ${bytes.latency.p97_5} ms`, "none (the cost of the bytes alone)", bytes.non2xx === 0);
    report("build detail page size", `${(html.length / 1024).toFixed(0)} KiB`, "tail only (< 200 KiB)", html.length < 200 * 1024);
  }, 10 * 60_000);
});

describe("a log line from the slave to the browser's live log", () => {
  let db: TestDatabase;
  let slave: Slave;
  let master: MasterProcess;
  let webapp: WebappProcess;
  const artifacts = tempDir("bench-live");

  beforeAll(async () => {
    db = await createTestDatabase();
    const repo = makeConfigRepo({ main: fakeConf(["sleep=15"]) });
    slave = await startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64" } });
    await addBuilderViaCli(db.url, "amd", slave.url, slave.token);
    await createUser(db.pool, { name: "bench", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    await createProject(db.pool, { name: "live", configUrl: repo.url, architecture: "amd64" });
    master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts });
    await master.started;
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: artifacts, env: { LOG_LEVEL: "warn" } });
  }, 5 * 60_000);

  afterAll(async () => {
    await webapp?.stop();
    await master?.stop();
    await slave?.stop();
    await db?.drop();
  });

  it("each progress line shows within 1 s of the slave writing it", async () => {
    const cookie = await login(webapp.url, "bench");
    const id = Number((await admin(db.url, ["request-build", "live"])).stdout.trim());
    const logFile = await waitUntil("the slave's log file", async () => {
      const found = findFile(slave.stateDir, "build.log", `${id}-`);
      return found && existsSync(found) ? found : null;
    });
    // Watch the slave's file: when did each progress line appear there?
    const writtenAt = new Map<string, number>();
    const timer = setInterval(() => {
      const text = readFileSync(logFile, "utf8");
      for (const m of text.matchAll(/I: Progress \d+\/\d+/g)) if (!writtenAt.has(m[0])) writtenAt.set(m[0], Date.now());
    }, 5);
    const shownAt = new Map<string, number>();
    const res = await fetch(`${webapp.url}/builds/${id}/log/stream?offset=0`, { headers: { cookie } });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      for (const m of buf.matchAll(/I: Progress \d+\/\d+/g)) if (!shownAt.has(m[0])) shownAt.set(m[0], Date.now());
      if (buf.includes("event: end")) break;
    }
    clearInterval(timer);
    const delays = [...shownAt].filter(([k]) => writtenAt.has(k)).map(([k, t]) => t - writtenAt.get(k)!);
    expect(delays.length).toBeGreaterThanOrEqual(10);
    const sorted = [...delays].sort((a, b) => a - b);
    const max = sorted[sorted.length - 1]!;
    const median = sorted[Math.floor(sorted.length / 2)]!;
    report("slave log line → browser (SSE)", `median ${median} ms, max ${max} ms over ${delays.length} lines`, "≤ 1000 ms", max <= 1000);
    expect(max).toBeLessThanOrEqual(1000);
  }, 5 * 60_000);
});

function findFile(dir: string, name: string, parentPrefix: string): string | null {
  const walk = (d: string, depth: number): string | null => {
    if (depth > 4 || !existsSync(d)) return null;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (e === name && d.split("/").pop()!.startsWith(parentPrefix)) return p;
      if (statSync(p).isDirectory()) {
        const f = walk(p, depth + 1);
        if (f) return f;
      }
    }
    return null;
  };
  return walk(dir, 0);
}
