// Protocol-speaking stand-in builders for the master benchmarks (the one place stand-ins are
// allowed: measuring the master alone). Many live behind one HTTP server, each under its own
// path (http://127.0.0.1:<port>/b/<n>). They answer info and long-poll status as a slave does;
// build() is accepted at once, the build "finishes" `buildMs` later with a tiny image and log
// served over /files, and clean() makes the builder IDLE again. No process is forked, so the
// time a build() takes to be accepted is the master's own, whatever the number of builders.
import { createHash } from "node:crypto";
import http from "node:http";
import {
  createLogger,
  createRpcHandler,
  FaultCode,
  RpcFault,
  type InfoResult,
  type ResultFile,
  type SlaveState,
  type StatusResult,
} from "@lexbuilder/shared-models";

export const STANDIN_TOKEN = "standin-token";

interface Held {
  cookie: string;
  startedAt: string;
  finishedAt?: string;
}

const INFO: InfoResult = {
  protocolVersion: "1",
  builderVersion: "standin",
  hostname: "standin",
  architectures: ["amd64"],
  builderTypes: ["live-build"],
  liveBuildVersion: "none",
  ready: true,
  freeDiskBytes: "100000000000",
};

/** The files every stand-in build produces, by sha256. */
function resultFiles(): { files: ResultFile[]; bodies: Map<string, Buffer> } {
  const bodies = new Map<string, Buffer>();
  const files: ResultFile[] = [];
  for (const [name, kind, text] of [
    ["live-image-amd64.img", "image", "stand-in image\n"],
    ["build.log", "log", "stand-in build\nP: Build completed successfully\n"],
  ] as const) {
    const body = Buffer.from(text);
    const sha256 = createHash("sha256").update(body).digest("hex");
    bodies.set(sha256, body);
    files.push({ name, sha256, size: String(body.length), kind });
  }
  return { files, bodies };
}
const RESULTS = resultFiles();
const LOG = RESULTS.bodies.get(RESULTS.files.find((f) => f.kind === "log")!.sha256)!;

class StandinBuilder {
  private state: SlaveState = "IDLE";
  private version = 1;
  private held: Held | null = null;
  private readonly waiters = new Set<() => void>();
  readonly handle: (req: http.IncomingMessage, res: http.ServerResponse) => void;

  constructor(private readonly buildMs: number | null) {
    this.handle = createRpcHandler({
      token: () => STANDIN_TOKEN,
      log: createLogger("standin", { level: "silent" }),
      methods: {
        echo: (p) => p,
        info: () => INFO,
        status: (p, ctx) => this.status(p[0], p[1], ctx.signal),
        build: (p) => this.build(String(p[0])),
        abort: (p) => this.abort(String(p[0])),
        clean: (p) => this.clean(String(p[0])),
      },
    });
  }

  private change(state: SlaveState): void {
    this.state = state;
    this.version += 1;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private snapshot(): StatusResult {
    const s: StatusResult = { state: this.state, version: this.version };
    if (!this.held) return s;
    s.cookie = this.held.cookie;
    s.startedAt = this.held.startedAt;
    s.logSize = String(LOG.length);
    s.logTail = LOG.toString();
    if (this.state === "WAITING") {
      s.result = "OK";
      s.message = "The stand-in build succeeded.";
      s.files = RESULTS.files;
      s.finishedAt = this.held.finishedAt;
    }
    return s;
  }

  private async status(known: unknown, wait: unknown, signal: AbortSignal): Promise<StatusResult> {
    if (typeof known === "number" && known === this.version && typeof wait === "number" && wait > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(wait, 30) * 1000);
        this.waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    return this.snapshot();
  }

  private build(cookie: string): { state: "BUILDING"; cookie: string } {
    if (this.state !== "IDLE") {
      if (this.held?.cookie === cookie) return { state: "BUILDING", cookie };
      throw new RpcFault(FaultCode.BUSY, `This stand-in is busy with ${this.held?.cookie}.`);
    }
    if (this.buildMs === null) throw new RpcFault(FaultCode.NOT_READY, "This stand-in only idles.");
    this.held = { cookie, startedAt: new Date().toISOString() };
    this.change("BUILDING");
    const held = this.held;
    setTimeout(() => {
      if (this.held !== held || this.state !== "BUILDING") return;
      held.finishedAt = new Date().toISOString();
      this.change("WAITING");
    }, this.buildMs);
    return { state: "BUILDING", cookie };
  }

  private abort(cookie: string): { state: "ABORTING" | "WAITING" | "IDLE" } {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (this.held?.cookie !== cookie) throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This stand-in holds ${this.held?.cookie}.`);
    if (this.state === "BUILDING") {
      this.held.finishedAt = new Date().toISOString();
      this.change("WAITING");
    }
    return { state: "WAITING" };
  }

  private clean(cookie: string): { state: "IDLE" } {
    if (this.state === "IDLE") return { state: "IDLE" };
    if (this.held?.cookie !== cookie) throw new RpcFault(FaultCode.UNKNOWN_COOKIE, `This stand-in holds ${this.held?.cookie}.`);
    this.held = null;
    this.change("IDLE");
    return { state: "IDLE" };
  }

  /** GET /files/<sha256> and /builds/<cookie>/log?offset=n. */
  serveBytes(path: string, query: URLSearchParams, res: http.ServerResponse): void {
    const file = /^\/files\/([0-9a-f]{64})$/.exec(path);
    const log = /^\/builds\/([^/]+)\/log$/.exec(path);
    let body: Buffer | undefined;
    if (file) body = RESULTS.bodies.get(file[1]!);
    else if (log && this.held?.cookie === decodeURIComponent(log[1]!)) body = LOG.subarray(Number(query.get("offset") ?? 0));
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length, "X-Log-Size": LOG.length }).end(body);
  }
}

export interface StandinFarm {
  /** The builders' URLs, one per stand-in. */
  urls: string[];
  close(): Promise<void>;
}

/**
 * `count` stand-ins behind one server. `buildMs`: how long an accepted build runs before
 * WAITING; null makes stand-ins that only idle (build() is refused).
 */
export async function startStandinBuilders(count: number, buildMs: number | null): Promise<StandinFarm> {
  const builders = Array.from({ length: count }, () => new StandinBuilder(buildMs));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://standin.invalid");
    const m = /^\/b\/([0-9]+)(\/.*)$/.exec(url.pathname);
    const builder = m ? builders[Number(m[1])] : undefined;
    if (!m || !builder) {
      res.writeHead(404).end();
      return;
    }
    if (m[2] === "/rpc") {
      req.url = "/rpc";
      builder.handle(req, res);
      return;
    }
    if (req.headers.authorization !== `Bearer ${STANDIN_TOKEN}`) {
      res.writeHead(401).end();
      return;
    }
    builder.serveBytes(m[2]!, url.searchParams, res);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    urls: builders.map((_, i) => `${base}/b/${i}`),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
