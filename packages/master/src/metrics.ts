// Prometheus text exposition on /metrics, and /healthz (200 while this master holds the lock
// and the database answers, else 503). Counters and the histogram live in memory; gauges
// (queue depth, builds and builders by state) are read from the database on each scrape.
import http from "node:http";
import type { ListenAddress } from "@lexbuilder/shared-models/config";
import type { Pool } from "@lexbuilder/shared-models/db";
import type { Logger } from "@lexbuilder/shared-models/logger";
import { BUILD_STATES, BUILDER_STATES } from "@lexbuilder/shared-models/states";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

class Histogram {
  readonly counts = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  sum = 0;
  count = 0;
  observe(seconds: number): void {
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

export class Metrics {
  readonly dispatchLatency = new Histogram();
  readonly finishDetection = new Histogram();
  bytesCollected = 0;
  filesCollected = 0;
  collectRetries = 0;
  collectResumes = 0;
  dispatchFailures = 0;
  scanFailures = 0;
  lostJobs = 0;
  buildsFinished = new Map<string, number>();

  countFinished(state: string): void {
    this.buildsFinished.set(state, (this.buildsFinished.get(state) ?? 0) + 1);
  }

  async render(pool: Pool, holdsLock: boolean): Promise<string> {
    const out: string[] = [];
    // A metric's header, and its one sample when it has no labels.
    const metric = (type: string) => (name: string, help: string, value?: number) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      if (value !== undefined) out.push(`${name} ${value}`);
    };
    const gauge = metric("gauge");
    const counter = metric("counter");

    const builds = await pool.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM builds GROUP BY state");
    const byState = new Map(builds.rows.map((r) => [r.state, r.n]));
    gauge("lexbuilder_queue_depth", "Builds waiting in the queue (QUEUED).", byState.get("QUEUED") ?? 0);
    gauge("lexbuilder_builds", "Builds by state.");
    for (const s of BUILD_STATES) out.push(`lexbuilder_builds{state="${s}"} ${byState.get(s) ?? 0}`);

    const builders = await pool.query<{ state: string; enabled: boolean; n: number }>(
      "SELECT state, enabled, count(*)::int AS n FROM builders GROUP BY state, enabled",
    );
    gauge("lexbuilder_builders", "Builders by observed state (disabled ones counted as state DISABLED).");
    const bstate = new Map<string, number>();
    for (const r of builders.rows) {
      const k = r.enabled ? r.state : "DISABLED";
      bstate.set(k, (bstate.get(k) ?? 0) + r.n);
    }
    for (const s of [...BUILDER_STATES, "DISABLED"]) out.push(`lexbuilder_builders{state="${s}"} ${bstate.get(s) ?? 0}`);

    const hist = (name: string, help: string, h: Histogram) => {
      metric("histogram")(name, help);
      LATENCY_BUCKETS.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i]}`));
      out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
    };
    hist("lexbuilder_dispatch_latency_seconds", "From the build's request to the slave accepting it.", this.dispatchLatency);
    hist("lexbuilder_finish_detection_seconds", "From the slave finishing a build to the master noticing it.", this.finishDetection);

    counter("lexbuilder_collected_bytes_total", "Bytes of result files collected and verified.", this.bytesCollected);
    counter("lexbuilder_collected_files_total", "Result files collected and verified.", this.filesCollected);
    counter("lexbuilder_collect_retries_total", "Downloads retried after a size or sha256 mismatch or a broken transfer.", this.collectRetries);
    counter("lexbuilder_collect_resumes_total", "Cut transfers resumed where they stopped (HTTP Range).", this.collectResumes);
    counter("lexbuilder_dispatch_failures_total", "build() calls that failed; the job went back to the queue.", this.dispatchFailures);
    counter("lexbuilder_scan_failures_total", "Failed status scans of builders.", this.scanFailures);
    counter("lexbuilder_lost_jobs_total", "Jobs found lost on a builder (wrong cookie, idle, or unreachable) and re-queued.", this.lostJobs);
    counter("lexbuilder_builds_finished_total", "Builds this master brought to an end state.");
    for (const [s, n] of this.buildsFinished) out.push(`lexbuilder_builds_finished_total{state="${s}"} ${n}`);
    gauge("lexbuilder_master_lock_held", "1 while this master holds the master lock.", holdsLock ? 1 : 0);
    return out.join("\n") + "\n";
  }
}

export async function startMetricsServer(opts: {
  listen: ListenAddress;
  metrics: Metrics;
  pool: Pool;
  holdsLock: () => boolean;
  log: Logger;
}): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store" });
      res.end(body);
    };
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "Only GET is served here.\n");
    if (path === "/healthz") {
      if (!opts.holdsLock()) return send(503, "This master does not hold the master lock.\n");
      opts.pool
        .query("SELECT 1")
        .then(() => send(200, "ok\n"))
        .catch(() => send(503, "The database does not answer.\n"));
      return;
    }
    if (path === "/metrics") {
      opts.metrics
        .render(opts.pool, opts.holdsLock())
        .then((text) => send(200, text, "text/plain; version=0.0.4; charset=utf-8"))
        .catch((err: Error) => {
          opts.log.warn({ err: err.message }, "cannot read metrics from the database");
          send(503, "The database does not answer; metrics are unavailable.\n");
        });
      return;
    }
    send(404, "Not found: this port serves /metrics and /healthz.\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`Cannot listen on ${opts.listen.host}:${opts.listen.port} for metrics (${err.code ?? err.message}); set LEXBUILDER_MASTER_METRICS_LISTEN to a free address.`)),
    );
    server.listen(opts.listen.port, opts.listen.host, () => resolve());
  });
  return server;
}
