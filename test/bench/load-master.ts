// Load: the master (the real daemon from dist/) driving 1000 protocol-speaking stand-in builders
// that take builds, finish them after a short time and hand over real files (sha256-checked by
// the master's collector). The master engineer's benchmark (master.bench.test.ts) measures the
// master's CPU with 1000 *idle* stand-ins; this one puts work through them: builds are
// requested in bursts and we measure request→BUILDING (dispatch), the stand-in's finish→
// SUCCEEDED (detection + collection + clean), end-to-end latency, errors and the master's CPU
// and memory. Run: npx vitest run --config test/chaos/vitest.config.ts test/bench/load-master.ts
// (LOAD_BUILDERS, LOAD_BUILDS override 1000 and 1000.)
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { expect, test } from "vitest";
import { createPool, createProject, migrate, requestBuild } from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { createLogger } from "@lexbuilder/shared-models/logger";
import {
  createRpcHandler,
  FaultCode,
  RpcFault,
  type ResultFile,
  type StatusResult,
} from "@lexbuilder/shared-models/protocol";
import { Daemon, MASTER_MAIN, Postgres, sleep } from "../chaos/stack.js";

const BUILDERS = Number(process.env.LOAD_BUILDERS ?? 1000);
const BUILDS = Number(process.env.LOAD_BUILDS ?? 1000);
const BUILD_MS = 1000;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
}

/** One stand-in: the slave's state machine without live-build (finishes after BUILD_MS). */
class StandIn {
  state: StatusResult["state"] = "IDLE";
  version = 1;
  cookie: string | null = null;
  finishedAt = 0;
  startedAt = "";
  private waiters = new Set<() => void>();
  constructor(readonly files: ResultFile[], readonly log: Buffer, readonly finishes: Map<string, number>) {}

  bump(): void {
    this.version += 1;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  snapshot(): StatusResult {
    const s: StatusResult = { state: this.state, version: this.version };
    if (this.state === "IDLE" || !this.cookie) return s;
    s.cookie = this.cookie;
    s.startedAt = this.startedAt;
    s.configRevision = "0123456789abcdef0123456789abcdef01234567";
    s.logSize = String(this.state === "WAITING" ? this.log.length : 0);
    if (this.state === "WAITING") {
      s.result = "OK";
      s.files = this.files;
      s.finishedAt = new Date(this.finishedAt).toISOString();
    }
    return s;
  }

  async status(params: unknown[], signal: AbortSignal): Promise<StatusResult> {
    const known = typeof params[0] === "number" ? params[0] : null;
    const wait = typeof params[1] === "number" ? Math.max(0, Math.min(30, params[1])) : 0;
    if (known !== null && known >= this.version && wait > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait * 1000);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return this.snapshot();
  }

  build(cookie: string): { state: "BUILDING"; cookie: string } {
    if (this.cookie === cookie && this.state !== "IDLE") return { state: "BUILDING", cookie };
    if (this.state !== "IDLE") throw new RpcFault(FaultCode.BUSY, `This stand-in is busy with ${this.cookie}.`);
    this.cookie = cookie;
    this.state = "BUILDING";
    this.startedAt = new Date().toISOString();
    this.bump();
    setTimeout(() => {
      if (this.cookie !== cookie || this.state !== "BUILDING") return;
      this.state = "WAITING";
      this.finishedAt = Date.now();
      this.finishes.set(cookie, this.finishedAt);
      this.bump();
    }, BUILD_MS);
    return { state: "BUILDING", cookie };
  }

  clean(cookie: string): { state: "IDLE" } {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (cookie !== this.cookie) throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This stand-in holds ${this.cookie}, not ${cookie}.`);
    if (this.state !== "WAITING") throw new RpcFault(FaultCode.WRONG_STATE, `Build ${cookie} is still ${this.state}.`);
    this.state = "IDLE";
    this.cookie = null;
    this.bump();
    return { state: "IDLE" };
  }

  abort(cookie: string): { state: "ABORTING" | "WAITING" | "IDLE" } {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (cookie !== this.cookie) throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This stand-in holds ${this.cookie}, not ${cookie}.`);
    this.state = "WAITING";
    this.bump();
    return { state: "WAITING" };
  }
}

test(`master with ${BUILDERS} stand-in builders and ${BUILDS} builds`, async () => {
  const work = mkdtempSync(join(tmpdir(), "lexbuilder-load-master-"));
  chmodSync(work, 0o755);
  const postgres = new Postgres(join(work, "pg", "data"));
  let master: Daemon | null = null;
  let server: http.Server | null = null;
  try {
    await postgres.start();
    const admin = new pg.Client({ connectionString: postgres.adminUrl });
    await admin.connect();
    await admin.query("CREATE DATABASE lexbuilder");
    await admin.end();
    const databaseUrl = postgres.url("lexbuilder");
    const pool = createPool(databaseUrl, { max: 4 });
    await migrate(pool);

    // The files every stand-in hands over: an image, a manifest and the log.
    const image = randomBytes(256 * 1024);
    const manifest = Buffer.from("base-files\t12.4\nbash\t5.2.15-2\n");
    const log = Buffer.from("RUN: lb build\nP: Build completed successfully\n");
    const blobs = new Map<string, Buffer>();
    const fileOf = (name: string, kind: ResultFile["kind"], data: Buffer): ResultFile => {
      const sha256 = createHash("sha256").update(data).digest("hex");
      blobs.set(sha256, data);
      return { name, sha256, size: String(data.length), kind };
    };
    const files = [fileOf("live-image-amd64.tar.tar.gz", "image", image), fileOf("live-image-amd64.packages", "manifest", manifest), fileOf("build.log", "log", log)];
    const finishes = new Map<string, number>();
    const standIns = new Map<string, { s: StandIn; rpc: (req: http.IncomingMessage, res: http.ServerResponse) => void }>();
    const quiet = createLogger("standin", { level: "silent" });
    let rpcCalls = 0;
    for (let i = 0; i < BUILDERS; i++) {
      const token = `standin-${i}-${randomBytes(8).toString("hex")}`;
      const s = new StandIn(files, log, finishes);
      const rpc = createRpcHandler({
        token: () => token,
        log: quiet,
        methods: {
          echo: (p) => p,
          info: () => ({
            protocolVersion: "1",
            builderVersion: "stand-in",
            hostname: `standin-${i}`,
            architectures: ["amd64"],
            builderTypes: ["live-build"],
            liveBuildVersion: "none",
            ready: true,
            freeDiskBytes: "100000000000",
          }),
          status: (p, ctx) => s.status(p, ctx.signal),
          build: (p) => s.build(String(p[0])),
          abort: (p) => s.abort(String(p[0])),
          clean: (p) => s.clean(String(p[0])),
        },
      });
      standIns.set(token, { s, rpc });
    }
    server = http.createServer((req, res) => {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
      const entry = standIns.get(token);
      if (!entry) {
        res.writeHead(401).end("Wrong token.\n");
        return;
      }
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/rpc") {
        rpcCalls += 1;
        entry.rpc(req, res);
        return;
      }
      const m = /^\/files\/([0-9a-f]{64})$/.exec(url.pathname);
      if (m && blobs.has(m[1]!)) {
        const data = blobs.get(m[1]!)!;
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": data.length, "accept-ranges": "bytes" }).end(data);
        return;
      }
      if (/^\/builds\/[^/]+\/log$/.test(url.pathname)) {
        const offset = Number(url.searchParams.get("offset") ?? 0);
        res.writeHead(200, { "content-type": "text/plain" }).end(log.subarray(Math.min(offset, log.length)));
        return;
      }
      res.writeHead(404).end("Not found.\n");
    });
    server.keepAliveTimeout = 65_000;
    server.maxConnections = 10_000;
    const port = await freePort();
    await new Promise<void>((r) => server!.listen(port, "127.0.0.1", () => r()));
    let n = 0;
    for (const token of standIns.keys()) {
      await pool.query("INSERT INTO builders (name, url, token) VALUES ($1, $2, $3)", [`standin-${n++}`, `http://127.0.0.1:${port}`, token]);
    }
    const projects: number[] = [];
    for (let i = 0; i < 50; i++) projects.push((await createProject(pool, { name: `load-${i}`, configUrl: "https://git.example.org/c.git", architecture: "amd64" })).id);

    const artifactsDir = join(work, "artifacts");
    mkdirSync(artifactsDir);
    const metricsPort = await freePort();
    master = new Daemon({
      name: "master",
      script: MASTER_MAIN,
      env: { DATABASE_URL: databaseUrl, LEXBUILDER_ARTIFACTS_DIR: artifactsDir, LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${metricsPort}`, LOG_LEVEL: "warn" },
      ready: /$^/,
      logFile: join(work, "master.log"),
    });
    await master.start([], false);
    // All builders seen idle.
    const t0 = Date.now();
    for (;;) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM builders WHERE state = 'IDLE' AND ready");
      if (rows[0]!.n === BUILDERS) break;
      if (Date.now() - t0 > 300_000) throw new Error(`only ${rows[0]!.n} of ${BUILDERS} builders came up in 300 s`);
      await sleep(500);
    }
    const warmupS = (Date.now() - t0) / 1000;
    const ticks = () => {
      const f = readFileSync(`/proc/${master!.pid}/stat`, "utf8");
      const parts = f.slice(f.lastIndexOf(")") + 2).split(" ");
      return Number(parts[11]) + Number(parts[12]);
    };
    const cpu0 = ticks();
    const w0 = Date.now();
    let rssMax = 0;

    // Bursts of 100 requests every 2 s until BUILDS are requested.
    const ids: number[] = [];
    const cookieOf = new Map<number, string>();
    for (let i = 0; i < BUILDS; i++) {
      const b = await requestBuild(pool, { projectId: projects[i % projects.length]!, reason: "api", milestone: `m${i}`, configRef: "main" });
      ids.push(b.id);
      if (i % 100 === 99) {
        rssMax = Math.max(rssMax, Number(/VmRSS:\s+([0-9]+)/.exec(readFileSync(`/proc/${master.pid}/status`, "utf8"))![1]) / 1024);
        await sleep(2000);
      }
    }
    const deadline = Date.now() + 600_000;
    let open = BUILDS;
    while (open > 0 && Date.now() < deadline) {
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM builds WHERE state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')");
      open = rows[0]!.n;
      rssMax = Math.max(rssMax, Number(/VmRSS:\s+([0-9]+)/.exec(readFileSync(`/proc/${master.pid}/status`, "utf8"))![1]) / 1024);
      await sleep(500);
    }
    const wallS = (Date.now() - w0) / 1000;
    const cpuS = (ticks() - cpu0) / 100;
    const { rows } = await pool.query<{ id: number; state: string; cookie: string | null; failure_message: string | null; requested: number; started: number | null; finished: number | null }>(
      `SELECT id, state, cookie, failure_message, extract(epoch FROM requested_at) * 1000 AS requested,
              extract(epoch FROM started_at) * 1000 AS started, extract(epoch FROM finished_at) * 1000 AS finished
         FROM builds ORDER BY id`,
    );
    await pool.end();
    const dispatch: number[] = [];
    const detect: number[] = [];
    const total: number[] = [];
    const outcomes: Record<string, number> = {};
    for (const r of rows) {
      outcomes[r.state] = (outcomes[r.state] ?? 0) + 1;
      if (r.started) dispatch.push(r.started - r.requested);
      if (r.finished) total.push(r.finished - r.requested);
      const f = r.cookie ? finishes.get(r.cookie) : undefined;
      if (f && r.finished && r.state === "SUCCEEDED") detect.push(r.finished - f);
      cookieOf.set(r.id, r.cookie ?? "");
    }
    const failures = rows.filter((r) => r.state !== "SUCCEEDED").slice(0, 5).map((r) => `${r.id} ${r.state}: ${r.failure_message}`);
    const fmt = (v: number[]) => `${pct(v, 50).toFixed(0)} / ${pct(v, 90).toFixed(0)} / ${pct(v, 99).toFixed(0)} / ${Math.max(...v).toFixed(0)}`;
    const table = [
      "| measure (ms) | p50 / p90 / p99 / max |",
      "|---|---|",
      `| request → BUILDING (dispatch) | ${fmt(dispatch)} |`,
      `| stand-in finished → SUCCEEDED (detect, download 3 files, verify, clean) | ${fmt(detect)} |`,
      `| request → SUCCEEDED (with ${BUILD_MS} ms build) | ${fmt(total)} |`,
    ].join("\n");
    process.stdout.write(
      `\nmaster load: ${BUILDERS} stand-in builders (up and idle after ${warmupS.toFixed(0)} s), ${BUILDS} builds in bursts of 100 every 2 s; ` +
        `outcomes ${JSON.stringify(outcomes)}; ${wallS.toFixed(0)} s until all final; master CPU ${((100 * cpuS) / wallS).toFixed(0)} % of a core, RSS max ${rssMax.toFixed(0)} MiB; ${rpcCalls} RPC calls served\n${table}\n` +
        (failures.length ? `not succeeded: ${failures.join("; ")}\n` : "") +
        "\n",
    );
    expect(outcomes.SUCCEEDED).toBe(BUILDS);
  } finally {
    await master?.close().catch(() => {});
    server?.closeAllConnections();
    server?.close();
    await postgres.stop();
    rmSync(work, { recursive: true, force: true });
  }
}, 30 * 60_000);
