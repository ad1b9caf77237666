// The notifier in-process against a real PostgreSQL, a real HTTP receiver and a real SMTP server
// on loopback: signatures verify; a 5xx and a timeout are retried with the same delivery id;
// a redirect is not followed; a private target is refused unless allowed; a redelivery sends the
// same bytes again; mail reaches subscribers with the log's last lines on failure.
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SMTPServer } from "smtp-server";
import {
  appendLogChunkAt,
  createProject,
  createUser,
  createWebhook,
  listDeliveries,
  queueTestEvent,
  redeliver,
  requestBuild,
  setSubscription,
  setUserEmail,
} from "@lexbuilder/shared-models/db";
import { createLogger } from "@lexbuilder/shared-models/logger";
import { createTestDatabase, driveBuild, waitUntil, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { Notifier, type NotifierConfig } from "../src/notifier/notifier.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
  path: string;
}

/** A receiver whose answer per path the test sets; it records every request. */
async function receiver(answer: (path: string, n: number) => { status: number; delayMs?: number; location?: string }) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), path });
      const a = answer(path, got.filter((g) => g.path === path).length);
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(a.status, a.location ? { location: a.location } : {});
        res.end(`answer ${a.status} to ${path}`);
      };
      if (a.delayMs) setTimeout(send, a.delayMs);
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { got, url: (path: string) => `http://127.0.0.1:${port}${path}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function smtp() {
  const mails: { to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: unquote(Buffer.concat(chunks).toString("utf8")) });
        callback();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { mails, url: `smtp://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const SECRET = "a-secret-of-16+chars";

/** The message as a reader sees it: quoted-printable soft breaks and escapes undone. */
function unquote(raw: string): string {
  return raw.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

describe("the notifier", () => {
  let db: TestDatabase;
  const stops: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  // Each test's notifiers and servers end with it: a notifier left running would take the next test's events.
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
  });
  afterAll(async () => {
    await db?.drop();
  });

  function start(extra: Partial<NotifierConfig> = {}): Notifier {
    const n = new Notifier(
      {
        databaseUrl: db.url,
        publicUrl: "https://lexbuilder.example.org",
        smtpUrl: null,
        mailFrom: "lexbuilder <builds@example.org>",
        policy: { allowPrivate: true, allowedHosts: [] },
        timeoutMs: 1000,
        retryBaseMs: 50,
        pollMs: 50,
        concurrency: 4,
        userAgent: "lexbuilder-test",
        ...extra,
      },
      createLogger("test", { level: "silent" }),
    );
    n.start();
    stops.push(() => n.stop(1000));
    return n;
  }

  it("posts signed JSON, retries a 5xx and a timeout with the same delivery id, and records every attempt", async () => {
    const rx = await receiver((path, n) => (path === "/flaky" && n === 1 ? { status: 503 } : path === "/slow" && n === 1 ? { status: 200, delayMs: 3000 } : { status: 204 }));
    stops.push(rx.close);
    const project = await createProject(db.pool, { name: "hooked", configUrl: "https://example.org/c.git", architecture: "amd64" });
    const flaky = await createWebhook(db.pool, { projectId: project.id, url: rx.url("/flaky"), secret: SECRET, events: ["build.succeeded"], format: "json", createdBy: null });
    const slow = await createWebhook(db.pool, { projectId: project.id, url: rx.url("/slow"), secret: SECRET, events: ["build.succeeded"], format: "slack", createdBy: null });
    start();
    const b = await requestBuild(db.pool, { projectId: project.id, reason: "manual" });
    await driveBuild(db.pool, b.id, "SUCCEEDED", { configRevision: "0123456789abcdef0123456789abcdef01234567" });

    await waitUntil("both hooks delivered", async () => (await listDeliveries(db.pool, flaky))[0]?.state === "delivered" && (await listDeliveries(db.pool, slow))[0]?.state === "delivered", { timeoutMs: 20_000 });
    const flakyPosts = rx.got.filter((g) => g.path === "/flaky");
    expect(flakyPosts).toHaveLength(2);
    for (const p of flakyPosts) {
      expect(p.headers["x-lexbuilder-event"]).toBe("build.succeeded");
      expect(p.headers["x-lexbuilder-signature-256"]).toBe("sha256=" + createHmac("sha256", SECRET).update(p.body).digest("hex"));
    }
    expect(flakyPosts[0]!.headers["x-lexbuilder-delivery"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(flakyPosts[1]!.headers["x-lexbuilder-delivery"]).toBe(flakyPosts[0]!.headers["x-lexbuilder-delivery"]);
    expect(flakyPosts[1]!.body).toBe(flakyPosts[0]!.body);
    const body = JSON.parse(flakyPosts[0]!.body);
    expect(body).toMatchObject({
      event: "build.succeeded",
      project: { name: "hooked", url: "https://lexbuilder.example.org/projects/hooked" },
      build: { id: b.id, state: "SUCCEEDED", result: "success", architecture: "amd64", url: `https://lexbuilder.example.org/builds/${b.id}`, configRevision: "0123456789abcdef0123456789abcdef01234567" },
    });
    const slowPosts = rx.got.filter((g) => g.path === "/slow");
    expect(slowPosts).toHaveLength(2);
    expect(JSON.parse(slowPosts[0]!.body).text).toContain(`hooked build #${b.id} succeeded (amd64`);

    const log = (await listDeliveries(db.pool, flaky))[0]!;
    expect(log.log.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 503],
      [2, 204],
    ]);
    expect(log.log[0]!.responseSnippet).toBe("answer 503 to /flaky");
    const slowLog = (await listDeliveries(db.pool, slow))[0]!;
    expect(slowLog.log[0]).toMatchObject({ attempt: 1, statusCode: null, error: "The receiver did not answer within 1 s." });
    expect(slowLog.log[1]).toMatchObject({ attempt: 2, statusCode: 204 });

    // Redeliver: same id, same bytes.
    const before = rx.got.length;
    expect(await redeliver(db.pool, log.id, flaky)).toBe(true);
    await waitUntil("the redelivery", () => rx.got.length > before);
    const re = rx.got[rx.got.length - 1]!;
    expect(re.headers["x-lexbuilder-delivery"]).toBe(log.id);
    expect(re.body).toBe(flakyPosts[0]!.body);
  });

  it("does not follow a redirect, and refuses a private target unless allowed", async () => {
    const rx = await receiver((path) => (path === "/moved" ? { status: 301, location: "http://127.0.0.1:1/elsewhere" } : { status: 200 }));
    stops.push(rx.close);
    const project = await createProject(db.pool, { name: "guarded", configUrl: "https://example.org/c.git", architecture: "amd64" });
    const moved = await createWebhook(db.pool, { projectId: project.id, url: rx.url("/moved"), secret: SECRET, events: ["build.failed"], format: "json", createdBy: null });
    const inward = await createWebhook(db.pool, { projectId: project.id, url: rx.url("/inward"), secret: SECRET, events: ["build.failed"], format: "json", createdBy: null });
    const n = start();
    await queueTestEvent(db.pool, moved, project.id);
    await waitUntil("the redirect answer recorded", async () => (await listDeliveries(db.pool, moved))[0]?.state === "failed");
    expect((await listDeliveries(db.pool, moved))[0]!.lastError).toBe("The receiver answered 301 (a redirect to http://127.0.0.1:1/elsewhere); redirects are not followed, so give the final URL.");
    expect(rx.got.filter((g) => g.path === "/elsewhere")).toHaveLength(0);
    await n.stop(1000);

    start({ policy: { allowPrivate: false, allowedHosts: [] } });
    await queueTestEvent(db.pool, inward, project.id);
    await waitUntil("the refusal recorded", async () => (await listDeliveries(db.pool, inward))[0]?.state === "failed");
    const d = (await listDeliveries(db.pool, inward))[0]!;
    expect(d.attempts).toBe(1);
    expect(d.lastError).toContain("127.0.0.1 is an address on a loopback, private or link-local network, which webhooks may not reach");
    expect(rx.got.filter((g) => g.path === "/inward")).toHaveLength(0);
  });

  it("mails subscribers by mode: every result, changes only, releases only; a failure quotes the log's end", async () => {
    const server = await smtp();
    stops.push(server.close);
    const project = await createProject(db.pool, { name: "mailed", configUrl: "https://example.org/c.git", architecture: "amd64" });
    const users: Record<string, number> = {};
    for (const mode of ["all", "changes", "releases"] as const) {
      const u = await createUser(db.pool, { name: `sub-${mode}`, role: "viewer", passwordHash: "x" });
      await setUserEmail(db.pool, u.id, `${mode}@example.org`);
      await setSubscription(db.pool, u.id, project.id, mode);
      users[mode] = u.id;
    }
    start({ smtpUrl: server.url });
    const ok1 = await requestBuild(db.pool, { projectId: project.id, reason: "manual", configRef: "r1" });
    await driveBuild(db.pool, ok1.id, "SUCCEEDED");
    await waitUntil("mail for the first success", () => server.mails.length >= 2);
    const ok2 = await requestBuild(db.pool, { projectId: project.id, reason: "manual", configRef: "r2" });
    await driveBuild(db.pool, ok2.id, "SUCCEEDED");
    await waitUntil("mail for the second success", () => server.mails.length >= 3);
    const bad = await requestBuild(db.pool, { projectId: project.id, reason: "manual", configRef: "r3" });
    await driveBuild(db.pool, bad.id, "BUILDING");
    const b = (await db.pool.query("SELECT cookie FROM builds WHERE id = $1", [bad.id])).rows[0];
    expect(b.cookie).toBeTruthy();
    await appendLogChunkAt(db.pool, bad.id, 0, Buffer.from("P: Begin\n\u001b[31mE: Unable to locate package nonsense\u001b[0m\n"));
    await driveBuild(db.pool, bad.id, "FAILED", { failureMessage: "lb build exited with status 100." });
    await waitUntil("mail for the failure", () => server.mails.length >= 5);
    const rel = await requestBuild(db.pool, { projectId: project.id, reason: "milestone", milestone: "2.0", configRef: "r4" });
    await driveBuild(db.pool, rel.id, "SUCCEEDED");
    await waitUntil("mail for the release", () => server.mails.length >= 8);

    const to = (who: string) => server.mails.filter((m) => m.to.includes(`${who}@example.org`));
    // all: 4 results; changes: first success, the failure, the success after it; releases: one.
    expect(to("all").length).toBe(4);
    expect(to("changes").length).toBe(3);
    expect(to("releases").length).toBe(1);
    const failure = to("changes").find((m) => m.raw.includes(`#${bad.id}`))!;
    expect(failure.raw).toMatch(/Subject: \[lexbuilder\] mailed build #\d+ failed \(amd64/);
    expect(failure.raw).toContain(`https://lexbuilder.example.org/builds/${bad.id}`);
    expect(failure.raw).toContain("E: Unable to locate package nonsense");
    expect(failure.raw).not.toContain("\u001b[");
    expect(to("releases")[0]!.raw).toContain("https://lexbuilder.example.org/projects/mailed/releases/2.0");
  });
});
