// CSRF, escaping of hostile text in every field, path tricks, headers, login throttling.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addArtifact,
  appendLog,
  createApiToken,
  getProjectByName,
  listAudit,
  requestBuild,
  failBuild,
} from "@lexbuilder/shared-models/db";
import { Client, loginAs, seedProject, seedSucceededBuild, startHarness, type Harness } from "./harness.js";

const XSS = `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`;
let h: Harness;
let admin: Client;

beforeAll(async () => {
  h = await startHarness({ loginAttempts: 5 });
  admin = await loginAs(h.base, "alice");
}, 120_000);

afterAll(async () => {
  await h?.close();
});

function expectEscaped(html: string) {
  expect(html).not.toContain("<script>alert(1)</script>");
  expect(html).not.toContain("<img src=x onerror");
  expect(html).not.toMatch(/"'><img/);
}

describe("CSRF", () => {
  it("refuses a form without a token, with a wrong token, and with another session's token", async () => {
    const bob = await loginAs(h.base, "bob");
    await seedProject(h, "csrf");
    expect((await bob.request("POST", "/projects/csrf/builds", { form: {} })).status).toBe(403);
    expect((await bob.request("POST", "/projects/csrf/builds", { form: { _csrf: "A".repeat(43) } })).status).toBe(403);
    expect((await bob.request("POST", "/projects/csrf/builds", { form: { _csrf: admin.csrf } })).status).toBe(403);
    const refused = await bob.request("POST", "/projects/csrf/builds", { form: { _csrf: "" } });
    expect(refused.text).toContain("did not come from this site");
    expect((await bob.post("/projects/csrf/builds")).status).toBe(303);
  });

  it("the login form is protected too, and logout needs the token", async () => {
    const c = new Client(h.base);
    await c.get("/login");
    expect((await c.request("POST", "/login", { form: { name: "alice", password: "x" } })).status).toBe(403);
    const a = await loginAs(h.base, "alice");
    expect((await a.request("POST", "/logout", { form: {} })).status).toBe(403);
    expect((await a.get("/")).status).toBe(200);
    expect((await a.post("/logout")).status).toBe(303);
    expect((await a.get("/")).status).toBe(303);
  });
});

describe("error pages keep the session usable", () => {
  it("the 404 page's logout form carries the session's token", async () => {
    const c = await loginAs(h.base, "bob");
    const token = c.csrf;
    expect(token).not.toBe("");
    const nf = await c.get("/no/such/page");
    expect(nf.status).toBe(404);
    expect(nf.text).toContain(`name="_csrf" value="${token}"`);
    expect((await c.post("/logout", {}, true)).status).toBe(303);
    expect((await c.get("/")).status).toBe(303);
  });
});

describe("escaping", () => {
  it("hostile text in project fields, build fields, log, manifest, file names, tokens and searches comes back escaped", async () => {
    const p = await seedProject(h, "xss", { title: XSS, description: XSS, extraEnv: { EVIL: XSS }, configRef: "main" });
    const { build } = await seedSucceededBuild(h, p.id, {
      log: `RUN: lb build\n${XSS}\n`,
      manifest: [["evil", XSS]],
      milestone: XSS.slice(0, 90),
    });
    await addArtifact(h.pool, { buildId: build.id, name: "evil-<b>.img", kind: "image", sha256: "a".repeat(64), size: 1, storedPath: "nowhere" }).catch(() => {
      /* the schema refuses such names: nothing to render */
    });
    const failed = await requestBuild(h.pool, { projectId: p.id, reason: "manual", configRef: "fail-ref" });
    await failBuild(h.pool, failed.id, null, "config", XSS);
    await appendLog(h.pool, failed.id, 0, Buffer.from(XSS));
    await createApiToken(h.pool, h.users.alice!.id, XSS.slice(0, 80));
    for (const path of [
      "/",
      "/projects",
      "/projects/xss",
      "/projects/xss/edit",
      `/builds/${build.id}`,
      `/builds/${failed.id}`,
      `/builds/${build.id}/manifest`,
      "/builds?project=xss",
      `/packages?name=evil`,
      `/packages?name=${encodeURIComponent(XSS)}&version=${encodeURIComponent(XSS)}`,
      `/diff?from=${encodeURIComponent(XSS)}&to=1`,
      `/builds?state=${encodeURIComponent(XSS)}`,
      "/account",
      `/nope/${encodeURIComponent(XSS)}`,
    ]) {
      const r = await admin.get(path);
      expect(r.status, path).toBeLessThan(500);
      expectEscaped(r.text);
    }
    expect((await admin.get(`/builds/${build.id}`)).text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    // The raw log is text/plain with nosniff: a browser never renders it as HTML.
    const raw = await admin.get(`/builds/${failed.id}/log`);
    expect(raw.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(raw.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("refused forms echo the hostile values escaped", async () => {
    const forms: [string, Record<string, string>][] = [
      ["/projects", { name: XSS, title: XSS, description: XSS, configUrl: XSS, configRef: XSS, architecture: XSS, suite: XSS, extraEnv: XSS, priority: XSS, scheduleKind: "cron", scheduleCron: XSS, scheduleTz: XSS, keepLast: XSS, keepDays: XSS }],
      ["/users", { name: XSS, role: XSS, password: "x" }],
      ["/builders", { name: XSS, url: XSS, token: XSS }],
      ["/account/tokens", { label: XSS.repeat(3) }],
      ["/projects/xss/builds", { milestone: XSS.repeat(3), configRef: XSS }],
      ["/login", { name: XSS, password: "x", next: XSS }],
    ];
    for (const [path, form] of forms) {
      const r = await admin.post(path, form);
      expect(r.status, path).toBeGreaterThanOrEqual(300);
      expect(r.status, path).toBeLessThan(500);
      expectEscaped(r.text);
    }
  });
});

describe("path tricks", () => {
  it("downloads go by artifact id only; a stored path outside the artifacts directory is refused", async () => {
    const p = await seedProject(h, "paths");
    const { build } = await seedSucceededBuild(h, p.id, { files: [{ name: "ok.img", kind: "image", content: Buffer.from("ok") }] });
    const escaped = await addArtifact(h.pool, { buildId: build.id, name: "passwd", kind: "other", sha256: "b".repeat(64), size: 10, storedPath: "../../../../etc/passwd" });
    const absolute = await addArtifact(h.pool, { buildId: build.id, name: "shadow", kind: "other", sha256: "c".repeat(64), size: 10, storedPath: "/etc/passwd" });
    for (const path of [
      `/artifacts/${escaped.id}`,
      `/artifacts/${absolute.id}`,
      "/artifacts/..%2F..%2Fetc%2Fpasswd",
      "/artifacts/1e3",
      "/artifacts/0x10",
      "/artifacts/-1",
      "/artifacts/%00",
      "/builds/..%2Fusers",
      "/builds/1%20OR%201=1",
      "/projects/..%2F..%2Fetc",
      "/static/../package.json",
      "/static/..%2F..%2Fpackage.json",
      "/static/%2e%2e/%2e%2e/package.json",
    ]) {
      const r = await admin.get(path);
      expect(r.status, path).toBe(404);
      expect(r.text, path).not.toContain("root:");
    }
  });

  it("login's next parameter only leads to local pages", async () => {
    for (const next of ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const c = new Client(h.base);
      await c.get(`/login?next=${encodeURIComponent(next)}`);
      const r = await c.post("/login", { name: "alice", password: "correct horse battery staple", next });
      expect(r.status).toBe(303);
      expect(r.location).toBe("/");
    }
    const c = new Client(h.base);
    await c.get("/login");
    const r = await c.post("/login", { name: "alice", password: "correct horse battery staple", next: "/builds?state=FAILED" });
    expect(r.location).toBe("/builds?state=FAILED");
  });
});

describe("headers and sessions", () => {
  it("sends a strict CSP and the usual security headers; cookies are HttpOnly and SameSite", async () => {
    const c = new Client(h.base);
    const r = await c.get("/login");
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("x-powered-by")).toBeNull();
    const cookie = r.headers.getSetCookie().join("\n");
    expect(cookie).toMatch(/lexbuilder\.form=.*HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(r.text).not.toMatch(/<script>(?!<\/script>)/); // no inline script
    const login = await c.post("/login", { name: "bob", password: "correct horse battery staple" });
    const session = login.headers.getSetCookie().find((x) => x.startsWith("lexbuilder.sid="));
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Lax/);
  });

  it("renews the session id at login (no fixation)", async () => {
    // A browser that still carries a session cookie (here its own, as a planted one would be).
    const c = await loginAs(h.base, "bob");
    const before = c.cookies.get("lexbuilder.sid");
    expect(before).toBeTruthy();
    await c.post("/login", { name: "bob", password: "correct horse battery staple" });
    expect(c.cookies.get("lexbuilder.sid")).toBeTruthy();
    expect(c.cookies.get("lexbuilder.sid")).not.toBe(before);
  });

  it("a wrong password is refused with a sentence and audited logins are recorded", async () => {
    const c = new Client(h.base);
    await c.get("/login");
    const r = await c.post("/login", { name: "bob", password: "wrong" });
    expect(r.status).toBe(401);
    expect(r.text).toContain("do not match");
    expect(r.text).toContain('value="bob"');
    const audit = await listAudit(h.pool, { objectType: "user", objectId: h.users.bob!.id });
    expect(audit.some((a) => a.action === "user.login")).toBe(true);
  });

  it("throttles failed logins", async () => {
    const c = new Client(h.base);
    await c.get("/login");
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await c.post("/login", { name: "vera", password: `wrong-${i}` })).status);
    expect(statuses).toContain(429);
    const r = await c.post("/login", { name: "vera", password: "correct horse battery staple" });
    expect(r.status).toBe(429);
    expect(r.text).toContain("Too many failed logins");
  });
});

describe("audit", () => {
  it("project edits leave a row with who and what", async () => {
    await seedProject(h, "audited");
    const form = { name: "audited", configUrl: "https://git.example.org/c.git", configRef: "main", architecture: "amd64", suite: "trixie", title: "New title", active: "on", scheduleKind: "daily", scheduleDailyAt: "04:15", scheduleTz: "UTC" };
    expect((await admin.post("/projects/audited", form)).status).toBe(303);
    const p = await getProjectByName(h.pool, "audited");
    expect(p!.scheduleDailyAt).toBe("04:15");
    const rows = await listAudit(h.pool, { objectType: "project", objectId: p!.id });
    expect(rows[0]).toMatchObject({ action: "project.update", actor: "alice", userId: h.users.alice!.id });
  });
});

describe("server errors", () => {
  it("a failing database gives a 500 page (and API answer) that explains without a stack trace", async () => {
    // Fault injection, last in this file: the projects table disappears under the running app.
    await h.pool.query("ALTER TABLE projects RENAME TO projects_gone");
    try {
      const r = await admin.get("/projects");
      expect(r.status).toBe(500);
      expect(r.text).toContain("Something went wrong on our side.");
      expect(r.text).toContain('href="/"');
      expect(r.text).not.toMatch(/projects_gone|relation|at \w+ \(|\.ts:\d+/);
      const a = await fetch(`${h.base}/api/v1/projects`, { headers: { authorization: `Bearer ${h.users.alice!.token}` } });
      expect(a.status).toBe(500);
      const body = (await a.json()) as { error: string };
      expect(body.error).toMatch(/^Something went wrong on our side/);
      expect(JSON.stringify(body)).not.toMatch(/relation|projects/);
    } finally {
      await h.pool.query("ALTER TABLE projects_gone RENAME TO projects");
    }
    expect((await admin.get("/projects")).status).toBe(200);
  });
});
