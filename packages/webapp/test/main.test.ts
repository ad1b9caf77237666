// The lexbuilder-webapp command as a real process (from dist/): --help, one-sentence config
// errors with exit 2, the secret file created 0600, serving pages and static files.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { createTestDatabase, waitUntil, type TestDatabase } from "@lexbuilder/shared-models/testing";

const BIN = fileURLToPath(new URL("../bin/lexbuilder-webapp.js", import.meta.url));
let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), "lexbuilder-webapp-main-"));
}, 120_000);

afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

function run(env: Record<string, string>, args: string[] = []) {
  return spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, encoding: "utf8", timeout: 20_000 });
}

describe("lexbuilder-webapp", () => {
  it("--help describes the command and its variables", () => {
    const r = run({}, ["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Usage: lexbuilder-webapp");
    for (const v of ["DATABASE_URL", "LEXBUILDER_WEBAPP_LISTEN", "LEXBUILDER_WEBAPP_SECRET_FILE", "LEXBUILDER_ARTIFACTS_DIR", "LEXBUILDER_ALLOWED_CONFIG_SCHEMES", "LEXBUILDER_WEBAPP_SECURE_COOKIES", "LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER", "LOG_LEVEL"]) {
      expect(r.stdout).toContain(v);
    }
  });

  it("stops with one sentence and exit 2 on bad configuration", () => {
    const base = { DATABASE_URL: db.url, LEXBUILDER_WEBAPP_SECRET_FILE: join(dir, "s1"), LEXBUILDER_ARTIFACTS_DIR: dir };
    const cases: [Record<string, string>, RegExp][] = [
      [{ DATABASE_URL: "" }, /DATABASE_URL is not set/],
      [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL must be a postgres/],
      [{ LEXBUILDER_WEBAPP_LISTEN: "nonsense" }, /LEXBUILDER_WEBAPP_LISTEN must look like host:port/],
      [{ LEXBUILDER_ALLOWED_CONFIG_SCHEMES: "https,gopher" }, /LEXBUILDER_ALLOWED_CONFIG_SCHEMES may only name/],
      [{ LEXBUILDER_ARTIFACTS_DIR: "relative/dir" }, /LEXBUILDER_ARTIFACTS_DIR must be an absolute path/],
      [{ LOG_LEVEL: "loud" }, /LOG_LEVEL must be one of/],
      [{ LEXBUILDER_WEBAPP_SECRET_FILE: "/nonexistent-dir/secret" }, /cannot be created/],
      [{ LEXBUILDER_WEBAPP_TRUST_PROXY: "maybe; drop table" }, /LEXBUILDER_WEBAPP_TRUST_PROXY must be/],
      [{ LEXBUILDER_WEBAPP_SECURE_COOKIES: "sometimes" }, /LEXBUILDER_WEBAPP_SECURE_COOKIES must be auto, true or false/],
      [{ LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER: "0" }, /LEXBUILDER_WEBAPP_LIVE_STREAMS_PER_USER must be a whole number from 1 to 1000/],
    ];
    for (const [change, message] of cases) {
      const r = run({ ...base, ...change });
      expect(r.status, JSON.stringify(change)).toBe(2);
      expect(r.stderr, JSON.stringify(change)).toMatch(message);
      expect(r.stderr.trim().split("\n"), JSON.stringify(change)).toHaveLength(1);
    }
    expect(run(base, ["--bogus"]).status).toBe(2);
  });

  it("creates its secret 0600, serves pages and static files, and stops on SIGTERM", async () => {
    const port = await freePort();
    const secret = join(dir, "webapp.secret");
    const child = spawn(process.execPath, [BIN], {
      env: { PATH: process.env.PATH ?? "", DATABASE_URL: db.url, LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${port}`, LEXBUILDER_WEBAPP_SECRET_FILE: secret, LEXBUILDER_ARTIFACTS_DIR: dir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    try {
      await waitUntil("the webapp to listen", () => {
        if (child.exitCode !== null) throw new Error(`The webapp exited before listening: ${out}`);
        return out.includes("web console listening");
      }, { timeoutMs: 15_000 });
      expect(((await stat(secret)).mode & 0o777).toString(8)).toBe("600");
      const login = await fetch(`http://127.0.0.1:${port}/login`);
      expect(login.status).toBe(200);
      expect(await login.text()).toContain("<title>Log in · lexbuilder</title>");
      const css = await fetch(`http://127.0.0.1:${port}/static/style.css`);
      expect(css.status).toBe(200);
      expect(css.headers.get("content-type")).toMatch(/text\/css/);
      const js = await fetch(`http://127.0.0.1:${port}/static/app.js`);
      expect(js.status).toBe(200);
      const home = await fetch(`http://127.0.0.1:${port}/`, { redirect: "manual" });
      expect(home.status).toBe(303);
      // The access log is JSON and never carries the cookie: wait for this request's line
      // (found by its request id), then look.
      const requestId = `witness-${port}`;
      const headers = { cookie: "lexbuilder.sid=supersecretcookie", authorization: "Bearer lxb_secret", "x-request-id": requestId };
      await fetch(`http://127.0.0.1:${port}/login`, { headers });
      const line = await waitUntil("the request's access log line", () => out.split("\n").slice(0, -1).find((l) => l.includes(`"id":"${requestId}"`)));
      expect(line).toMatch(/"url":"\/login"/);
      expect(out).not.toContain("supersecretcookie");
      expect(out).not.toContain("lxb_secret");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    expect(child.exitCode).toBe(0);
  });
});
