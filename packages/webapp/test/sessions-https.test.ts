// Anonymous visits store no session; the login form's token is a signed double submit;
// Secure cookies and HSTS over HTTPS (directly or as the trusted proxy says); live-log
// streams per user are limited.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request as httpsRequest, createServer as createHttpsServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestBuild } from "@lexbuilder/shared-models/db";
import { driveBuild, waitUntil } from "@lexbuilder/shared-models/testing";
import { createApp } from "../src/app.js";
import { Client, PASSWORD, loginAs, seedProject, startHarness, type Harness } from "./harness.js";

let h: Harness;

beforeAll(async () => {
  // Behind a proxy on loopback (as the README's deployment), two streams per user.
  h = await startHarness({ trustProxy: "loopback", liveStreamsPerUser: 2 });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function sessionRows(): Promise<number> {
  const { rows } = await h.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions");
  return rows[0]!.n;
}

describe("sessions exist only after a login", () => {
  it("anonymous visits of any page store no session row; the login stores one", async () => {
    const before = await sessionRows();
    const c = new Client(h.base);
    for (const path of ["/login", "/", "/projects", "/builds", "/builders", "/no/such/page", "/login?next=/builds"]) {
      const r = await c.get(path);
      expect([200, 303, 404], path).toContain(r.status);
    }
    // A refused login (wrong password) stores none either.
    expect((await c.post("/login", { name: "bob", password: "wrong" })).status).toBe(401);
    expect(await sessionRows()).toBe(before);
    expect(c.cookies.has("lexbuilder.sid")).toBe(false);
    expect(c.cookies.has("lexbuilder.form")).toBe(true);
    const r = await c.post("/login", { name: "bob", password: PASSWORD });
    expect(r.status).toBe(303);
    expect(await sessionRows()).toBe(before + 1);
    expect(c.cookies.has("lexbuilder.sid")).toBe(true);
    // The form cookie is done with once logged in.
    expect(c.cookies.has("lexbuilder.form")).toBe(false);
    expect((await c.get("/")).status).toBe(200);
  });

  it("the login form's token works only with the cookie it was made for", async () => {
    const a = new Client(h.base);
    const b = new Client(h.base);
    await a.get("/login");
    await b.get("/login");
    expect(a.csrf).not.toBe("");
    expect(a.csrf).not.toBe(b.csrf);
    // Another visitor's token, no cookie, a changed cookie, no token: all refused.
    expect((await b.request("POST", "/login", { form: { _csrf: a.csrf, name: "bob", password: PASSWORD } })).status).toBe(403);
    const bare = new Client(h.base);
    expect((await bare.request("POST", "/login", { form: { _csrf: a.csrf, name: "bob", password: PASSWORD } })).status).toBe(403);
    const forged = new Client(h.base);
    forged.cookies.set("lexbuilder.form", "A".repeat(43));
    expect((await forged.request("POST", "/login", { form: { _csrf: a.csrf, name: "bob", password: PASSWORD } })).status).toBe(403);
    const refused = await a.request("POST", "/login", { form: { name: "bob", password: PASSWORD } });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain("did not come from this site");
    // An anonymous token is no good for a logged-in session's forms.
    const anonymousToken = b.csrf;
    const bob = await loginAs(h.base, "bob");
    expect((await bob.request("POST", "/logout", { form: { _csrf: anonymousToken } })).status).toBe(403);
    expect((await a.post("/login", { name: "bob", password: PASSWORD })).status).toBe(303);
  });
});

describe("HTTPS", () => {
  it("behind the trusted proxy: Secure cookies and HSTS when it says https, neither when it says http", async () => {
    const overHttps = await fetch(`${h.base}/login`, { headers: { "x-forwarded-proto": "https" } });
    expect(overHttps.headers.get("strict-transport-security")).toBe("max-age=31536000; includeSubDomains");
    expect(overHttps.headers.getSetCookie().join("\n")).toMatch(/lexbuilder\.form=[^;]+;.*Secure/);
    const plain = await fetch(`${h.base}/login`);
    expect(plain.headers.get("strict-transport-security")).toBeNull();
    expect(plain.headers.getSetCookie().join("\n")).not.toMatch(/Secure/);

    // The session cookie of a login over https is Secure too.
    const c = new Client(h.base);
    const page = await c.request("GET", "/login", { headers: { "x-forwarded-proto": "https" } });
    expect(page.status).toBe(200);
    const login = await c.request("POST", "/login", { form: { _csrf: c.csrf, name: "bob", password: PASSWORD }, headers: { "x-forwarded-proto": "https" } });
    expect(login.status).toBe(303);
    const sid = login.headers.getSetCookie().find((x) => x.startsWith("lexbuilder.sid="));
    expect(sid).toMatch(/; Secure/);
    expect(sid).toMatch(/HttpOnly/);
  });

  it("an untrusted client's X-Forwarded-Proto changes nothing", async () => {
    const other = await startHarness({ users: [["zed", "viewer"]] });
    try {
      const r = await fetch(`${other.base}/login`, { headers: { "x-forwarded-proto": "https" } });
      expect(r.status).toBe(200);
      expect(r.headers.get("strict-transport-security")).toBeNull();
      expect(r.headers.getSetCookie().join("\n")).not.toMatch(/Secure/);
    } finally {
      await other.close();
    }
  }, 120_000);

  it("served over TLS directly: Secure cookies and HSTS", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lexbuilder-tls-"));
    let server: Server | null = null;
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
      const app = createApp({ pool: h.pool, config: { ...h.config, trustProxy: false }, log: pino({ level: "silent" }) });
      server = createHttpsServer({ key: await readFile(join(dir, "key.pem")), cert: await readFile(join(dir, "cert.pem")) }, app);
      await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
      const { port } = server.address() as { port: number };
      const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
        const req = httpsRequest({ host: "127.0.0.1", port, path: "/login", rejectUnauthorized: false }, (res) => {
          res.resume();
          res.on("end", () => resolve({ ...res.headers, status: String(res.statusCode) }));
        });
        req.on("error", reject);
        req.end();
      });
      expect(headers.status).toBe("200");
      expect(headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
      expect(String(headers["set-cookie"])).toMatch(/lexbuilder\.form=[^;]+;.*Secure/);
    } finally {
      server?.closeAllConnections();
      if (server) await new Promise((r) => server!.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("live-log streams per user", () => {
  it("the stream over the limit gets a 429 sentence; other users are not affected; a closed stream frees its place", async () => {
    const p = await seedProject(h, "streams");
    const b = await requestBuild(h.pool, { projectId: p.id, reason: "manual", priority: 1_000_000 });
    await driveBuild(h.pool, b.id, "BUILDING");
    const bob = await loginAs(h.base, "bob");
    const olga = await loginAs(h.base, "olga");
    const cookieOf = (c: Client) => [...c.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const open = async (c: Client) => {
      const controller = new AbortController();
      const res = await fetch(`${h.base}/builds/${b.id}/log/stream`, { headers: { cookie: cookieOf(c), accept: "text/event-stream" }, signal: controller.signal });
      if (res.status === 200) {
        // The first bytes: the stream is open on the server.
        await res.body!.getReader().read();
      }
      return { status: res.status, text: res.status === 200 ? "" : await res.text(), close: () => controller.abort() };
    };
    const first = await open(bob);
    const second = await open(bob);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await open(bob);
    expect(third.status).toBe(429);
    expect(third.text).toContain("You have 2 live logs open already; close some build pages and reload this one.");
    const olgas = await open(olga);
    expect(olgas.status).toBe(200);
    first.close();
    const again = await waitUntil("bob's closed stream to free its place", async () => {
      const s = await open(bob);
      return s.status === 200 ? s : null;
    });
    expect((await open(bob)).status).toBe(429);
    for (const s of [second, olgas, again]) s.close();
  });
});
