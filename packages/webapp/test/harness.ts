// Test harness: a fresh database, the app on 127.0.0.1:0 with a real Listener, seeded users
// and projects, and an HTTP client with a cookie jar that reads CSRF tokens from pages.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  Listener,
  addArtifact,
  appendLog,
  createApiToken,
  createProject,
  createUser,
  insertManifest,
  requestBuild,
  setProjectMembers,
  type Pool,
  type ProjectInput,
} from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import type { Role } from "@lexbuilder/shared-models/states";
import { createTestDatabase, driveBuild, waitUntil, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { createApp } from "../src/app.js";
import type { WebappConfig } from "../src/config.js";
import { WebCaches } from "../src/cache/web-caches.js";

export const PASSWORD = "correct horse battery staple";

export interface Harness {
  db: TestDatabase;
  pool: Pool;
  base: string;
  artifactsDir: string;
  users: Record<string, { id: number; role: Role; token: string }>;
  caches: WebCaches;
  config: WebappConfig;
  close(): Promise<void>;
}

export async function startHarness(
  options: { loginAttempts?: number; accountLoginAttempts?: number; users?: [string, Role][]; cacheTtlMs?: number; trustProxy?: WebappConfig["trustProxy"]; liveStreamsPerUser?: number; webhookAllowedHosts?: string[] } = {},
): Promise<Harness> {
  const db = await createTestDatabase();
  const artifactsDir = await mkdtemp(join(tmpdir(), "lexbuilder-webapp-artifacts-"));
  const config: WebappConfig = {
    databaseUrl: db.url,
    listen: { host: "127.0.0.1", port: 0 },
    secret: "x".repeat(64),
    artifactsDir,
    allowedConfigSchemes: ["https", "http", "git", "ssh", "file"],
    trustProxy: options.trustProxy ?? false,
    secureCookies: "auto",
    loginAttempts: options.loginAttempts ?? 1000,
    accountLoginAttempts: options.accountLoginAttempts ?? 1000,
    timeZone: "UTC",
    liveStreamsPerUser: options.liveStreamsPerUser,
    // As deployed: webhooks may not point at loopback or private networks.
    webhookPolicy: { allowPrivate: false, allowedHosts: options.webhookAllowedHosts ?? [] },
    // Far beyond the 1 s default: every test then shows that notifications alone keep the
    // caches right (a short TTL would hide a missed invalidation).
    cacheTtlMs: options.cacheTtlMs ?? 60_000,
  };
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const listener = new Listener(db.url, log);
  await listener.start();
  const caches = new WebCaches(db.pool, listener, log, config.cacheTtlMs);
  const app = createApp({ pool: db.pool, listener, config, log, caches });
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  // Tests run with the caches on, as production does.
  await waitUntil("the caches to start (a probe coming back through LISTEN)", () => caches.active);
  const hash = await hashPassword(PASSWORD);
  const users: Harness["users"] = {};
  const seed: [string, Role][] = options.users ?? [
    ["alice", "admin"],
    ["bob", "builder"],
    ["olga", "builder"],
    ["vera", "viewer"],
  ];
  for (const [name, role] of seed) {
    const u = await createUser(db.pool, { name, role, passwordHash: hash });
    const { token } = await createApiToken(db.pool, u.id, "tests");
    users[name] = { id: u.id, role, token };
  }
  return {
    db,
    pool: db.pool,
    base: `http://127.0.0.1:${port}`,
    artifactsDir,
    users,
    caches,
    config,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      caches.stop();
      await listener.stop();
      await db.drop();
      await rm(artifactsDir, { recursive: true, force: true });
    },
  };
}

export function projectInput(name: string, extra: Partial<ProjectInput> = {}): ProjectInput {
  return { name, configUrl: "https://git.example.org/config.git", configRef: "main", architecture: "amd64", ...extra };
}

export async function seedProject(h: Harness, name: string, extra: Partial<ProjectInput> = {}, members: string[] = []) {
  const p = await createProject(h.pool, projectInput(name, extra));
  if (members.length) await setProjectMembers(h.pool, p.id, members.map((m) => h.users[m]!.id));
  return p;
}

/** A build walked through the real transitions to SUCCEEDED, with a log, files and a manifest. */
export async function seedSucceededBuild(
  h: Harness,
  projectId: number,
  options: { log?: string; manifest?: [string, string][]; files?: { name: string; kind: "image" | "manifest" | "other"; content: Buffer }[]; milestone?: string } = {},
) {
  const build = await requestBuild(h.pool, {
    projectId,
    reason: options.milestone ? "milestone" : "manual",
    milestone: options.milestone ?? null,
    configRef: `seed-${Math.random().toString(36).slice(2)}`,
    // First in the queue, so the claim below takes this build and no other.
    priority: 1_000_000,
  });
  await driveBuild(h.pool, build.id, "BUILDING");
  if (options.log) await appendLog(h.pool, build.id, 0, Buffer.from(options.log));
  await driveBuild(h.pool, build.id, "COLLECTING", { configRevision: "0123456789abcdef0123456789abcdef01234567" });
  const artifacts = [];
  for (const f of options.files ?? []) {
    const rel = join("p", String(build.id), f.name);
    await mkdir(join(h.artifactsDir, "p", String(build.id)), { recursive: true });
    await writeFile(join(h.artifactsDir, rel), f.content);
    artifacts.push(
      await addArtifact(h.pool, {
        buildId: build.id,
        name: f.name,
        kind: f.kind,
        sha256: createHash("sha256").update(f.content).digest("hex"),
        size: f.content.length,
        storedPath: rel,
      }),
    );
  }
  if (options.manifest) await insertManifest(h.pool, build.id, options.manifest.map(([p, v]) => ({ package: p, version: v })));
  await driveBuild(h.pool, build.id, "SUCCEEDED", { artifactDir: join("p", String(build.id)) });
  return { build, artifacts };
}

/** A browser-like client: keeps cookies, follows nothing by itself, finds CSRF tokens. */
export class Client {
  cookies = new Map<string, string>();
  csrf = "";
  constructor(readonly base: string) {}

  async request(method: string, path: string, init: { form?: Record<string, string | string[]>; headers?: Record<string, string>; body?: string } = {}) {
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    let body: string | undefined = init.body;
    if (init.form) {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
      body = p.toString();
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const res = await fetch(this.base + path, { method, headers, body, redirect: "manual" });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      const k = pair!.slice(0, i);
      const v = pair!.slice(i + 1);
      if (/expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const text = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text);
    if (m) this.csrf = m[1]!;
    return { status: res.status, headers: res.headers, text, location: res.headers.get("location") };
  }
  get(path: string) {
    return this.request("GET", path);
  }
  /** POST a form with the session's CSRF token (fetching a page first if none is known). */
  async post(path: string, form: Record<string, string | string[]> = {}, withCsrf = true) {
    if (withCsrf && !this.csrf) await this.get("/login");
    return this.request("POST", path, { form: withCsrf ? { _csrf: this.csrf, ...form } : form });
  }
}

export async function loginAs(base: string, name: string, password = PASSWORD): Promise<Client> {
  const c = new Client(base);
  await c.get("/login");
  const r = await c.post("/login", { name, password });
  if (r.status !== 303) throw new Error(`login as ${name} failed: ${r.status}`);
  await c.get("/");
  return c;
}

export function api(base: string, token: string | null) {
  return async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, text, json: json as any };
  };
}

/** A second webapp on the same database (as behind a load balancer), with its own caches. */
export async function startPeer(h: Harness): Promise<{ base: string; caches: WebCaches; close(): Promise<void> }> {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const listener = new Listener(h.db.url, log);
  await listener.start();
  const caches = new WebCaches(h.pool, listener, log, h.config.cacheTtlMs);
  const server: Server = createServer(createApp({ pool: h.pool, listener, config: h.config, log, caches }));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  await waitUntil("the peer's caches to start", () => caches.active);
  const address = server.address();
  return {
    base: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`,
    caches,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      caches.stop();
      await listener.stop();
    },
  };
}

/**
 * Polls until check() passes (notifications take milliseconds, not the 60 s cache lifetime);
 * the deadline is generous so a loaded machine does not fail it.
 */
export async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
