// Load: the web console at 50 concurrent users (autocannon, loopback) while builds run. The
// stack is real: PostgreSQL, a master, two slaves with the fake lb (1 s builds), the webapp
// process from dist/; a background client requests a build every second through the API.
// Two scenarios: the JSON API (list, detail, log) with a token, and the HTML pages (dashboard,
// builds list, project, build detail) with a logged-in session. Prints latency percentiles,
// throughput and errors as a Markdown table.
// Run: npx vitest run --config test/chaos/vitest.config.ts test/bench/load-webapp.ts
// (LOAD_CONNECTIONS, LOAD_SECONDS override 50 and 30.)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @ts-expect-error autocannon ships no type declarations
import autocannon from "autocannon";
import pg from "pg";
import { expect, test } from "vitest";
import {
  addBuilder,
  createApiToken,
  createPool,
  createProject,
  createUser,
  migrate,
} from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { makeConfigRepo } from "../../packages/slave/test/helpers.js";
import { loginAs } from "../../packages/webapp/test/harness.js";
import { Daemon, MASTER_MAIN, Postgres, sleep, slaveSpec, WEBAPP_MAIN } from "../chaos/stack.js";

const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.LOAD_SECONDS ?? 30);
const PASSWORD = "load load load load";

/** The parts of autocannon's result this run reads (the package ships no types). */
interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  non2xx: number;
  timeouts: number;
}

interface Row {
  scenario: string;
  requests: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  non2xx: number;
  timeouts: number;
}

test(`webapp at ${CONNECTIONS} concurrent users for ${SECONDS} s per scenario, builds running`, async () => {
  const work = mkdtempSync(join(tmpdir(), "lexbuilder-load-webapp-"));
  chmodSync(work, 0o755);
  const postgres = new Postgres(join(work, "pg", "data"));
  const daemons: Daemon[] = [];
  try {
    await postgres.start();
    const admin = new pg.Client({ connectionString: postgres.adminUrl });
    await admin.connect();
    await admin.query("CREATE DATABASE lexbuilder");
    await admin.end();
    const databaseUrl = postgres.url("lexbuilder");
    const pool = createPool(databaseUrl, { max: 2 });
    await migrate(pool);
    const user = await createUser(pool, { name: "loadadmin", role: "admin", passwordHash: await hashPassword(PASSWORD) });
    const { token } = await createApiToken(pool, user.id, "load");
    const repo = makeConfigRepo({ main: { "fake-lb.conf": "sleep=1\n" } });
    for (let i = 0; i < 4; i++) await createProject(pool, { name: `load-${i}`, configUrl: repo.url, configRef: "main", architecture: "amd64" });
    for (let i = 0; i < 2; i++) {
      const dir = join(work, `slave${i}`);
      const port = await freePort();
      const d = new Daemon(slaveSpec(`slave${i}`, dir, port));
      daemons.push(d);
      await d.start([], true, 120_000);
      await addBuilder(pool, { name: `slave${i}`, url: `http://127.0.0.1:${port}`, token: readFileSync(join(dir, "slave.token"), "utf8").trim() });
    }
    const artifactsDir = join(work, "artifacts");
    mkdirSync(artifactsDir);
    const master = new Daemon({
      name: "master",
      script: MASTER_MAIN,
      env: { DATABASE_URL: databaseUrl, LEXBUILDER_ARTIFACTS_DIR: artifactsDir, LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${await freePort()}`, LOG_LEVEL: "info" },
      ready: /holding the master lock/,
      logFile: join(work, "master.log"),
    });
    daemons.push(master);
    await master.start([], true, 120_000);
    const webPort = await freePort();
    const webapp = new Daemon({
      name: "webapp",
      script: WEBAPP_MAIN,
      // warn: request logging at info level would measure the logger, not the console.
      env: { DATABASE_URL: databaseUrl, LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${webPort}`, LEXBUILDER_WEBAPP_SECRET_FILE: join(work, "secret"), LEXBUILDER_ARTIFACTS_DIR: artifactsDir, LOG_LEVEL: "warn" },
      ready: /$^/,
      logFile: join(work, "webapp.log"),
    });
    daemons.push(webapp);
    await webapp.start([], false);
    const base = `http://127.0.0.1:${webPort}`;
    for (let i = 0; !(await fetch(`${base}/login`).then((r) => r.ok, () => false)); i++) {
      if (i > 600) throw new Error(`the webapp did not start: ${webapp.output()}`);
      await sleep(100);
    }
    const session = await loginAs(base, "loadadmin", PASSWORD);
    const cookie = [...session.cookies].map(([k, v]) => `${k}=${v}`).join("; ");

    // Builds run during the whole measurement: one request a second, round robin.
    let requested = 0;
    let running = true;
    const requester = (async () => {
      while (running) {
        const res = await fetch(`${base}/api/v1/projects/load-${requested % 4}/builds`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ milestone: `load-${requested}` }),
        }).catch(() => null);
        if (res?.status === 201) requested += 1;
        await sleep(1000);
      }
    })();
    // Some history to read.
    while (requested < 5) await sleep(200);
    const { rows: someBuild } = await pool.query<{ id: number }>("SELECT min(id) AS id FROM builds");
    const id = someBuild[0]!.id;

    const run = (title: string, requests: { method: string; path: string }[], headers: Record<string, string>) =>
      new Promise<Row>((resolve, reject) => {
        autocannon({ url: base, connections: CONNECTIONS, duration: SECONDS, headers, requests, timeout: 10 }, (err: Error | null, r: AutocannonResult) => {
          if (err) return reject(err);
          resolve({
            scenario: title,
            requests: r.requests.total,
            rps: Math.round(r.requests.average),
            p50: r.latency.p50,
            p90: r.latency.p90,
            p99: r.latency.p99,
            max: r.latency.max,
            errors: r.errors,
            non2xx: r.non2xx,
            timeouts: r.timeouts,
          });
        });
      });

    const rows: Row[] = [];
    rows.push(
      await run(
        "JSON API (token): builds list, build detail, log, projects",
        [
          { method: "GET", path: "/api/v1/builds?limit=20" },
          { method: "GET", path: `/api/v1/builds/${id}` },
          { method: "GET", path: `/api/v1/builds/${id}/log?offset=0` },
          { method: "GET", path: "/api/v1/projects" },
        ],
        { authorization: `Bearer ${token}` },
      ),
    );
    rows.push(
      await run(
        "HTML pages (session): dashboard, builds, project, build",
        [
          { method: "GET", path: "/" },
          { method: "GET", path: "/builds" },
          { method: "GET", path: "/projects/load-0" },
          { method: "GET", path: `/builds/${id}` },
        ],
        { cookie },
      ),
    );
    running = false;
    await requester;
    const { rows: states } = await pool.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM builds GROUP BY state ORDER BY state");
    await pool.end();

    const table = [
      "| scenario | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx | timeouts |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...rows.map((r) => `| ${r.scenario} | ${r.requests} | ${r.rps} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.max} | ${r.errors} | ${r.non2xx} | ${r.timeouts} |`),
    ].join("\n");
    process.stdout.write(
      `\nwebapp load, ${CONNECTIONS} connections, ${SECONDS} s per scenario; ${requested} builds requested meanwhile, builds by state: ${states.map((s) => `${s.state} ${s.n}`).join(", ")}\n${table}\n\n`,
    );
    for (const r of rows) {
      expect(r.errors, r.scenario).toBe(0);
      expect(r.non2xx, r.scenario).toBe(0);
      expect(r.requests, r.scenario).toBeGreaterThan(0);
    }
    // Builds did run while the console was under load.
    expect(states.some((s) => s.state === "SUCCEEDED")).toBe(true);
  } finally {
    for (const d of daemons.reverse()) await d.close().catch(() => {});
    await postgres.stop();
    rmSync(work, { recursive: true, force: true });
  }
}, 20 * 60_000);
