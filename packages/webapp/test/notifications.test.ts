// Notifications through the console and the API against a real PostgreSQL: who may manage which
// webhooks, the exact refusals (nothing stored), the delivery log and redelivery as stored by
// the notifier's SQL, subscriptions and e-mail, and the Atom feed (public anonymously, private
// only with a token).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  claimDueDeliveries,
  countBuildEvents,
  getSubscription,
  getUserEmail,
  insertDeliveries,
  listAudit,
  recordDeliveryAttempt,
  setMasterFact,
  takePendingEvents,
  withTransaction,
} from "@lexbuilder/shared-models/db";
import { api, loginAs, seedProject, seedSucceededBuild, startHarness, type Harness } from "./harness.js";

let h: Harness;
const SECRET = "sixteen-chars-or-more";

beforeAll(async () => {
  h = await startHarness({ webhookAllowedHosts: ["127.0.0.1"] });
  await seedProject(h, "pub", {}, ["bob"]);
  await seedProject(h, "priv", { private: true }, ["bob"]);
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function webhookCount(): Promise<number> {
  return (await h.pool.query("SELECT count(*)::int AS n FROM webhooks")).rows[0].n;
}

describe("webhooks through the API", () => {
  it("creates, lists without the secret, and deletes a project's hook; its managers only", async () => {
    const bob = api(h.base, h.users.bob!.token);
    const created = await bob("POST", "/api/v1/projects/pub/webhooks", { url: "http://127.0.0.1:9/hook", secret: SECRET, events: ["build.failed", "build.succeeded"] });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ id: expect.any(Number) });
    const list = await bob("GET", "/api/v1/projects/pub/webhooks");
    expect(list.json).toEqual([expect.objectContaining({ id: created.json.id, url: "http://127.0.0.1:9/hook", events: ["build.failed", "build.succeeded"], format: "json", active: true })]);
    expect(list.text).not.toContain(SECRET);
    // olga is a builder but not a member; vera a viewer; priv does not exist for olga.
    expect((await api(h.base, h.users.olga!.token)("GET", "/api/v1/projects/pub/webhooks")).status).toBe(403);
    expect((await api(h.base, h.users.vera!.token)("POST", "/api/v1/projects/pub/webhooks", { url: "http://127.0.0.1:9/x", secret: SECRET, events: ["build.failed"] })).status).toBe(403);
    expect((await api(h.base, h.users.olga!.token)("GET", "/api/v1/projects/priv/webhooks")).status).toBe(404);
    const audit = await listAudit(h.pool, { objectType: "webhook", objectId: created.json.id });
    expect(JSON.stringify(audit)).not.toContain(SECRET);
    expect((await bob("DELETE", `/api/v1/projects/pub/webhooks/${created.json.id}`)).status).toBe(204);
    expect((await bob("DELETE", `/api/v1/projects/pub/webhooks/${created.json.id}`)).status).toBe(404);
  });

  it("refuses bad input with a sentence and stores nothing", async () => {
    const bob = api(h.base, h.users.bob!.token);
    const before = await webhookCount();
    const cases: [unknown, string][] = [
      [{ url: "ftp://example.org/x", secret: SECRET, events: ["build.failed"] }, "Webhooks are posted over http:// or https:// only, not ftp://."],
      [{ url: "http://127.0.0.1:9/x", secret: "short", events: ["build.failed"] }, "The secret must be at least 16 characters long; the receiver uses it to check each delivery's signature."],
      [{ url: "http://127.0.0.1:9/x", secret: SECRET, events: ["build.exploded"] }, expect.stringContaining('Unknown event "build.exploded"')],
      [{ url: "http://127.0.0.1:9/x", secret: SECRET, events: ["builder.disabled"] }, "builder.disabled is sent by farm-wide webhooks only; an administrator can add one on the builders page."],
      [{ url: "http://127.0.0.1:9/x", secret: SECRET, events: "build.failed" }, 'events must be a list, e.g. ["build.succeeded", "build.failed"].'],
      [{ url: "http://10.1.2.3/x", secret: SECRET, events: ["build.failed"] }, expect.stringContaining("10.1.2.3 is an address on a loopback, private or link-local network, which webhooks may not reach")],
      [{ url: "http://localhost:9/x", secret: SECRET, events: ["build.failed"] }, expect.stringContaining("which webhooks may not reach")],
      [{ url: "http://127.0.0.1:9/x", secret: SECRET, events: ["build.failed"], colour: "red" }, 'Unknown field "colour"; accepted are url, secret, events, format.'],
      [[1, 2], 'The body must be a JSON object like {"url": "https://ci.example.org/hook", "secret": "at least 16 characters", "events": ["build.failed"], "format": "json"}.'],
    ];
    for (const [body, error] of cases) {
      const r = await bob("POST", "/api/v1/projects/pub/webhooks", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toEqual(error);
    }
    expect(await webhookCount()).toBe(before);
  });

  it("farm-wide hooks are for administrators, and may hear builder.disabled", async () => {
    expect((await api(h.base, h.users.bob!.token)("GET", "/api/v1/webhooks")).status).toBe(403);
    const alice = api(h.base, h.users.alice!.token);
    const r = await alice("POST", "/api/v1/webhooks", { url: "http://127.0.0.1:9/farm", secret: SECRET, events: ["builder.disabled"], format: "slack" });
    expect(r.status).toBe(201);
    expect((await alice("GET", "/api/v1/webhooks")).json.map((w: { id: number }) => w.id)).toEqual([r.json.id]);
    // Not reachable through a project's path.
    expect((await alice("DELETE", `/api/v1/projects/pub/webhooks/${r.json.id}`)).status).toBe(404);
  });

  it("shows the delivery log and redelivers with the same id", async () => {
    const bob = api(h.base, h.users.bob!.token);
    const project = (await h.pool.query("SELECT id FROM projects WHERE name = 'pub'")).rows[0].id;
    const created = await bob("POST", "/api/v1/projects/pub/webhooks", { url: "http://127.0.0.1:9/log", secret: SECRET, events: ["build.succeeded"] });
    const hook = created.json.id as number;
    const { build } = await seedSucceededBuild(h, project, {});
    expect((await countBuildEvents(h.pool, [build.id])).map((e) => e.kind)).toContain("build.succeeded");
    // What the master's notifier does, through the same SQL: fan out, claim, record a 500.
    await withTransaction(h.pool, async (c) => {
      const events = await takePendingEvents(c, 1000);
      const ev = events.find((e) => e.kind === "build.succeeded" && e.build?.id === build.id)!;
      await insertDeliveries(c, [{ eventId: ev.id, channel: "webhook", webhookId: hook, body: "{}" }]);
    });
    const [d] = await claimDueDeliveries(h.pool, 10, 60);
    await recordDeliveryAttempt(h.pool, { deliveryId: d!.id, attempt: 1, statusCode: 500, durationMs: 42, responseSnippet: "<b>oops</b>", error: "The receiver answered 500.", outcome: "failed" });

    const log = await bob("GET", `/api/v1/projects/pub/webhooks/${hook}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.json).toEqual([
      expect.objectContaining({ id: d!.id, event: "build.succeeded", state: "failed", attempts: 1, log: [expect.objectContaining({ attempt: 1, statusCode: 500, durationMs: 42, responseSnippet: "<b>oops</b>" })] }),
    ]);
    const re = await bob("POST", `/api/v1/projects/pub/webhooks/${hook}/deliveries/${d!.id}/redeliver`);
    expect(re.status).toBe(202);
    expect((await bob("GET", `/api/v1/projects/pub/webhooks/${hook}/deliveries`)).json[0].state).toBe("pending");
    expect((await bob("POST", `/api/v1/projects/pub/webhooks/${hook}/deliveries/00000000-0000-0000-0000-000000000000/redeliver`)).status).toBe(404);
    expect((await bob("POST", `/api/v1/projects/pub/webhooks/${hook}/deliveries/not-a-uuid/redeliver`)).status).toBe(404);

    // The page escapes what the receiver answered.
    const page = await (await loginAs(h.base, "bob")).get(`/projects/pub/webhooks/${hook}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("&lt;b&gt;oops&lt;/b&gt;");
    expect(page.text).not.toContain("<b>oops</b>");
  });
});

describe("mail", () => {
  it("sets a subscription by API and form, an e-mail on the account page, and says when mail is off", async () => {
    const vera = api(h.base, h.users.vera!.token);
    expect((await vera("PUT", "/api/v1/projects/pub/subscription", { mode: "changes" })).json).toEqual({ mode: "changes" });
    expect(await getSubscription(h.pool, h.users.vera!.id, (await h.pool.query("SELECT id FROM projects WHERE name='pub'")).rows[0].id)).toBe("changes");
    expect((await vera("PUT", "/api/v1/projects/pub/subscription", { mode: "often" })).json.error).toBe(
      "Choose a subscription: all (every result), changes (failures and fixes), releases, or none.",
    );
    // A private project vera cannot see does not exist for her.
    expect((await vera("PUT", "/api/v1/projects/priv/subscription", { mode: "all" })).status).toBe(404);

    const c = await loginAs(h.base, "vera");
    expect((await c.get("/projects/pub/notifications")).text).toContain('id="mail-off"');
    await setMasterFact(h.pool, "mail", { enabled: true, from: "x@example.org" });
    const page = await c.get("/projects/pub/notifications");
    expect(page.text).not.toContain('id="mail-off"');
    expect(page.text).toContain('id="no-email"');
    expect(page.text).not.toContain('id="webhooks"');
    const bad = await c.post("/account/email", { email: "not an address" });
    expect(bad.status).toBe(303);
    expect((await c.get("/account")).text).toContain("is not an e-mail address; give one such as jane@example.org.");
    expect(await getUserEmail(h.pool, h.users.vera!.id)).toBeNull();
    await c.post("/account/email", { email: "vera@example.org" });
    expect(await getUserEmail(h.pool, h.users.vera!.id)).toBe("vera@example.org");
    await c.post("/projects/pub/subscription", { mode: "releases" });
    expect((await c.get("/projects/pub/notifications")).text).toMatch(/<option value="releases" selected>/);
  });
});

describe("the Atom feed", () => {
  it("serves a public project's finished builds to anyone, a private one only with a token", async () => {
    const pub = (await h.pool.query("SELECT id FROM projects WHERE name = 'pub'")).rows[0].id;
    const priv = (await h.pool.query("SELECT id FROM projects WHERE name = 'priv'")).rows[0].id;
    await seedSucceededBuild(h, pub, {});
    await seedSucceededBuild(h, priv, {});
    const r = await fetch(`${h.base}/projects/pub/feed.atom`);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/atom+xml");
    const text = await r.text();
    expect(text).toMatch(/^<\?xml version="1.0" encoding="utf-8"\?>\n<feed xmlns="http:\/\/www.w3.org\/2005\/Atom">/);
    const entries = text.match(/<entry>/g) ?? [];
    expect(entries.length).toBeGreaterThan(0);
    for (const tag of ["id", "title", "updated"]) expect(text).toContain(`<${tag}>`);
    expect(text).toMatch(/<title>pub build #\d+ succeeded \(amd64\)<\/title>/);

    expect((await fetch(`${h.base}/projects/priv/feed.atom`)).status).toBe(404);
    expect((await fetch(`${h.base}/projects/priv/feed.atom`, { headers: { authorization: `Bearer ${h.users.vera!.token}` } })).status).toBe(404);
    const ok = await fetch(`${h.base}/projects/priv/feed.atom`, { headers: { authorization: `Bearer ${h.users.bob!.token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("<title>priv build #");
    expect((await fetch(`${h.base}/projects/priv/feed.atom`, { headers: { authorization: "Bearer lxb_nonsense" } })).status).toBe(401);
  });
});
