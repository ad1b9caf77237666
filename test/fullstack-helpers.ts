// Support for the full-stack tests: the real master (dist/) and lexbuilder-admin as child
// processes, real slaves (the slave package's helpers, with its fake lb), a real PostgreSQL,
// and a small HTTP relay that can slow down or corrupt file transfers between master and slave.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Pool } from "@lexbuilder/shared-models/db";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";

const here = dirname(fileURLToPath(import.meta.url));
export const MASTER_MAIN = join(here, "..", "packages", "master", "dist", "main.js");
export const ADMIN_MAIN = join(here, "..", "packages", "master", "dist", "admin", "main.js");

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `lexbuilder-${prefix}-`));
}

/** Fast failure-policy numbers so the tests take seconds, not minutes. */
export const FAST_MASTER_ENV: Record<string, string> = {
  LEXBUILDER_MASTER_SCAN_GLITCHES: "2",
  LEXBUILDER_MASTER_SCAN_RETRY_MS: "300",
  LEXBUILDER_MASTER_STATUS_WAIT: "5",
  LEXBUILDER_MASTER_CALL_TIMEOUT: "10",
  LEXBUILDER_MASTER_CONTROL_TIMEOUT: "10",
  LEXBUILDER_MASTER_SWEEP_SECONDS: "2",
  LEXBUILDER_MASTER_CANCEL_DEADLINE: "30",
  LOG_LEVEL: "info",
};

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of children) p.kill("SIGKILL");
});

export interface MasterProcess {
  proc: ChildProcess;
  metricsUrl: string;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves when the master logged that it started (holds the lock). */
  started: Promise<void>;
  stop(): Promise<number | null>;
  crash(): Promise<void>;
}

export async function startMaster(opts: { databaseUrl: string; artifactsDir: string; args?: string[]; env?: Record<string, string> }): Promise<MasterProcess> {
  const metricsPort = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    DATABASE_URL: opts.databaseUrl,
    LEXBUILDER_ARTIFACTS_DIR: opts.artifactsDir,
    LEXBUILDER_MASTER_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    ...FAST_MASTER_ENV,
    ...opts.env,
  };
  const proc = spawn(process.execPath, [MASTER_MAIN, ...(opts.args ?? [])], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let out = "";
  const waiters: Array<() => void> = [];
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const w of waiters.splice(0)) w();
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) =>
    proc.on("exit", (code, signal) => {
      children.delete(proc);
      resolve(code ?? (signal ? -1 : null));
    }),
  );
  const started = new Promise<void>((resolve, reject) => {
    const check = () => {
      if (out.includes('"msg":"master started"')) resolve();
      else waiters.push(check);
    };
    check();
    void exited.then((code) => reject(new Error(`the master exited with ${code} before starting:\n${out}`)));
  });
  started.catch(() => {});
  return {
    proc,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    output: () => out,
    exited,
    started,
    stop: async () => {
      proc.kill("SIGTERM");
      return exited;
    },
    crash: async () => {
      proc.kill("SIGKILL");
      await exited;
    },
  };
}

export interface AdminResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function admin(databaseUrl: string, args: string[], env: Record<string, string> = {}): Promise<AdminResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ADMIN_MAIN, ...args],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", DATABASE_URL: databaseUrl, LEXBUILDER_ALLOWED_CONFIG_SCHEMES: "file", ...env } },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
      },
    );
  });
}

/** add-builder through the CLI, with the token in a file. */
export async function addBuilderViaCli(databaseUrl: string, name: string, url: string, token: string): Promise<void> {
  const file = join(tempDir("token"), "token");
  writeFileSync(file, token + "\n", { mode: 0o600 });
  const r = await admin(databaseUrl, ["add-builder", name, url, "--token-file", file]);
  if (r.code !== 0) throw new Error(`add-builder failed: ${r.stderr}`);
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface BuildRow {
  id: number;
  state: string;
  failure_kind: string | null;
  failure_message: string | null;
  builder_id: number | null;
  attempt: number;
  requeue_count: number;
  cookie: string | null;
  artifact_dir: string | null;
  log_size: number;
  dispatched_at: Date | null;
}

export async function buildRow(pool: Pool, id: number): Promise<BuildRow> {
  const { rows } = await pool.query<BuildRow>("SELECT * FROM builds WHERE id = $1", [id]);
  if (!rows[0]) throw new Error(`no build ${id}`);
  return rows[0];
}

export function waitForBuildState(pool: Pool, id: number, states: string[], timeoutMs = 60_000): Promise<BuildRow> {
  return waitUntil(`build ${id} to reach ${states.join("/")}`, async () => {
    const b = await buildRow(pool, id);
    return states.includes(b.state) ? b : null;
  }, timeoutMs);
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

export async function builderId(pool: Pool, name: string): Promise<number> {
  const { rows } = await pool.query<{ id: number }>("SELECT id FROM builders WHERE name = $1", [name]);
  return rows[0]!.id;
}

/**
 * An HTTP relay in front of a slave. `files` decides what happens to GET /files/…:
 * "pass", "slow" (waits `delayMs` before answering), "corrupt" (flips a byte of the body), or
 * "cut" (drops the connection after `cutAfterBytes` bytes of the body, `cutTimes` times).
 * Every other request passes through untouched.
 */
export interface Relay {
  url: string;
  /** Where requests go (changeable: a restarted slave listens on a new port). */
  target: string;
  mode: { files: "pass" | "slow" | "corrupt" | "cut"; delayMs: number; corruptTimes: number; cutAfterBytes?: number; cutTimes?: number };
  fileRequests: number;
  /** File requests that asked for a byte range (a resumed transfer). */
  rangeRequests: number;
  close(): Promise<void>;
}

export async function startRelay(target: string): Promise<Relay> {
  const relay: Relay = {
    url: "",
    target,
    mode: { files: "pass", delayMs: 0, corruptTimes: Infinity },
    fileRequests: 0,
    rangeRequests: 0,
    close: async () => {},
  };
  const server = http.createServer((req, res) => {
    const isFile = req.method === "GET" && (req.url ?? "").startsWith("/files/");
    const forward = () => {
      const t = new URL(relay.target);
      const up = http.request(
        { host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers },
        (upRes) => {
          const corrupt = isFile && relay.mode.files === "corrupt" && relay.mode.corruptTimes > 0 && upRes.statusCode === 200;
          if (corrupt) relay.mode.corruptTimes--;
          const ok = upRes.statusCode === 200 || upRes.statusCode === 206;
          const cut = isFile && ok && relay.mode.files === "cut" && (relay.mode.cutTimes ?? 0) > 0;
          if (cut) relay.mode.cutTimes!--;
          let sent = 0;
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          let first = true;
          upRes.on("data", (chunk: Buffer) => {
            if (cut) {
              const room = (relay.mode.cutAfterBytes ?? 0) - sent;
              if (room <= 0) return;
              if (chunk.length >= room) {
                res.write(chunk.subarray(0, room));
                sent += room;
                upRes.destroy();
                // Let the bytes leave before the connection drops, as a real cut would.
                setTimeout(() => res.destroy(), 50);
                return;
              }
              sent += chunk.length;
            }
            if (corrupt && first && chunk.length > 0) {
              chunk = Buffer.from(chunk);
              chunk[chunk.length >> 1] = chunk[chunk.length >> 1]! ^ 0xff;
            }
            first = false;
            res.write(chunk);
          });
          upRes.on("end", () => res.end());
          upRes.on("error", () => res.destroy());
        },
      );
      up.on("error", () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    };
    if (isFile) {
      relay.fileRequests++;
      if (req.headers.range) relay.rangeRequests++;
      if (relay.mode.files === "slow") {
        setTimeout(forward, relay.mode.delayMs);
        return;
      }
    }
    forward();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  relay.url = `http://127.0.0.1:${port}`;
  relay.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return relay;
}
