// The in-memory caches (src/cache): pages, sessions and token owners are served from memory,
// yet every change shows on the next request once its notification has arrived. The harness
// keeps cached entries for 60 s, so each "eventually" below passes only through an
// invalidation, never by expiry. Writes go through the shared-models functions on the pool
// (as the master or the admin CLI make them) or through a second webapp (a peer), so the
// triggers' notifications are what the tested app relies on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cancelBuild,
  createApiToken,
  createUser,
  deleteLog,
  requestBuild,
  revokeApiToken,
  setProjectMembers,
  setUserActive,
  setUserRole,
  updateProject,
} from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { api, eventually, loginAs, PASSWORD, seedProject, seedSucceededBuild, startHarness, startPeer, type Client, type Harness } from "./harness.js";

let h: Harness;
let ids: { pub: number; secret: number; pubBuild: number; secretBuild: number };

beforeAll(async () => {
  h = await startHarness({ users: [["alice", "admin"], ["amy", "admin"], ["bob", "builder"], ["olga", "builder"], ["vera", "viewer"], ["vic", "viewer"]] });
  const pub = await seedProject(h, "pub", { title: "Public" });
  const secret = await seedProject(h, "secret", { title: "Secret", private: true }, ["vera", "bob"]);
  const pubBuild = await seedSucceededBuild(h, pub.id, { log: "public log line\n", manifest: [["bash", "5.2"]] });
  const secretBuild = await seedSucceededBuild(h, secret.id, { log: "secret log line\n", manifest: [["bash", "5.1"]] });
  ids = { pub: pub.id, secret: secret.id, pubBuild: pubBuild.build.id, secretBuild: secretBuild.build.id };
}, 120_000);

afterAll(async () => {
  await h?.close();
});

/** GETs twice and checks that the second answer came from the page cache. */
async function cachedGet(c: Client, path: string) {
  await c.get(path);
  const hits = h.caches.pages.hits;
  const r = await c.get(path);
  expect(r.status).toBe(200);
  expect(h.caches.pages.hits).toBeGreaterThan(hits);
  return r;
}

describe("pages follow the database at once", () => {
  it("a new build and its state change show on the builds list, the project page and the API list", async () => {
    const vera = await loginAs(h.base, "vera");
    const veraApi = api(h.base, h.users.vera!.token);
    await cachedGet(vera, "/builds");
    await cachedGet(vera, "/projects/pub");
    await veraApi("GET", "/api/v1/builds");
    const b = await requestBuild(h.pool, { projectId: ids.pub, reason: "manual", configRef: "new-build-ref" });
    await eventually(async () => {
      expect((await vera.get("/builds")).text).toContain(`/builds/${b.id}"`);
      expect((await vera.get("/projects/pub")).text).toContain(`/builds/${b.id}"`);
      const list = (await veraApi("GET", "/api/v1/builds")).json as { id: number; state: string }[];
      expect(list.find((x) => x.id === b.id)?.state).toBe("QUEUED");
    });
    await cachedGet(vera, "/projects/pub");
    await cancelBuild(h.pool, b.id);
    await eventually(async () => {
      const row = /<tr>\s*<td data-label="Build"><a href="\/builds\/(\d+)">[\s\S]*?<\/tr>/.exec((await vera.get("/projects/pub")).text)!;
      expect(row[1]).toBe(String(b.id));
      expect(row[0]).toContain("CANCELLED");
      const list = (await veraApi("GET", "/api/v1/builds")).json as { id: number; state: string }[];
      expect(list.find((x) => x.id === b.id)?.state).toBe("CANCELLED");
    });
  });

  it("a project change and a finished build's log removal show on their pages", async () => {
    const vera = await loginAs(h.base, "vera");
    expect((await cachedGet(vera, "/projects/pub")).text).toContain("Public");
    await updateProject(h.pool, ids.pub, { title: "Renamed title" });
    await eventually(async () => expect((await vera.get("/projects/pub")).text).toContain("Renamed title"));
    expect((await cachedGet(vera, `/builds/${ids.pubBuild}`)).text).toContain("public log line");
    // Retention empties a log: only log_size moves, announced for this build alone.
    await deleteLog(h.pool, ids.pubBuild);
    await eventually(async () => expect((await vera.get(`/builds/${ids.pubBuild}`)).text).not.toContain("public log line"));
  });

  it("a running build's page is never kept (its log grows every second)", async () => {
    const vera = await loginAs(h.base, "vera");
    const b = await requestBuild(h.pool, { projectId: ids.pub, reason: "manual", configRef: "running-ref" });
    await vera.get(`/builds/${b.id}`);
    const hits = h.caches.pages.hits;
    expect((await vera.get(`/builds/${b.id}`)).status).toBe(200);
    expect(h.caches.pages.hits).toBe(hits);
    await cancelBuild(h.pool, b.id);
  });
});

describe("who may see what changes at once", () => {
  it("a removed membership hides a private project from the former member's cached pages and API answers", async () => {
    const vera = await loginAs(h.base, "vera");
    const veraApi = api(h.base, h.users.vera!.token);
    expect((await cachedGet(vera, "/projects/secret")).status).toBe(200);
    expect((await cachedGet(vera, "/builds")).text).toContain(`/builds/${ids.secretBuild}"`);
    await cachedGet(vera, `/builds/${ids.secretBuild}`);
    expect(((await veraApi("GET", "/api/v1/builds")).json as { id: number }[]).some((b) => b.id === ids.secretBuild)).toBe(true);
    await setProjectMembers(h.pool, ids.secret, [h.users.bob!.id]);
    try {
      await eventually(async () => {
        expect((await vera.get("/projects/secret")).status).toBe(404);
        expect((await vera.get(`/builds/${ids.secretBuild}`)).status).toBe(404);
        expect((await vera.get("/builds")).text).not.toContain(`/builds/${ids.secretBuild}"`);
        expect(((await veraApi("GET", "/api/v1/builds")).json as { id: number }[]).some((b) => b.id === ids.secretBuild)).toBe(false);
      });
    } finally {
      await setProjectMembers(h.pool, ids.secret, [h.users.vera!.id, h.users.bob!.id]);
    }
  });

  it("a project made private disappears for non-members", async () => {
    const vic = await loginAs(h.base, "vic");
    const p = await seedProject(h, "turns-private");
    await cachedGet(vic, "/projects/turns-private");
    await updateProject(h.pool, p.id, { private: true });
    await eventually(async () => expect((await vic.get("/projects/turns-private")).status).toBe(404));
  });

  it("a deactivated user is logged out and their token refused, whoever deactivates them", async () => {
    const u = await createUser(h.pool, { name: "dora", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    const { token } = await createApiToken(h.pool, u.id, "t");
    const dora = await loginAs(h.base, "dora");
    await cachedGet(dora, "/builds");
    expect((await api(h.base, token)("GET", "/api/v1/builds")).status).toBe(200);
    expect((await api(h.base, token)("GET", "/api/v1/builds")).status).toBe(200);
    // The admin CLI's way: straight to the database.
    await setUserActive(h.pool, u.id, false);
    await eventually(async () => {
      const r = await dora.get("/builds");
      expect(r.status).toBe(303);
      expect(r.location).toMatch(/^\/login/);
      expect((await api(h.base, token)("GET", "/api/v1/builds")).status).toBe(401);
    });
  });

  it("a deactivation through the console takes effect on the very next request", async () => {
    const u = await createUser(h.pool, { name: "dina", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    const dina = await loginAs(h.base, "dina");
    await cachedGet(dina, "/builds");
    const alice = await loginAs(h.base, "alice");
    expect((await alice.post("/users/dina/active", { active: "false" })).status).toBe(303);
    expect((await dina.get("/builds")).status).toBe(303);
    await setUserActive(h.pool, u.id, true);
  });

  it("a demoted builder loses the build buttons", async () => {
    const u = await createUser(h.pool, { name: "bert", role: "builder", passwordHash: await hashPassword(PASSWORD) });
    const bert = await loginAs(h.base, "bert");
    expect((await cachedGet(bert, "/projects/pub")).text).toContain('id="build-now"');
    await setUserRole(h.pool, u.id, "viewer");
    await eventually(async () => {
      const text = (await bert.get("/projects/pub")).text;
      expect(text).not.toContain('id="build-now"');
      expect(text).toContain('<span class="role">viewer</span>');
    });
    expect((await bert.post("/projects/pub/builds", {})).status).toBe(403);
  });

  it("a revoked token is refused at once", async () => {
    const { id, token } = await createApiToken(h.pool, h.users.vic!.id, "soon revoked");
    const call = api(h.base, token);
    expect((await call("GET", "/api/v1/builds")).status).toBe(200);
    expect((await call("GET", "/api/v1/builds")).status).toBe(200);
    await revokeApiToken(h.pool, h.users.vic!.id, id);
    await eventually(async () => expect((await call("GET", "/api/v1/builds")).status).toBe(401));
  });

  it("a changed password ends the user's other sessions at once, and the old password", async () => {
    await createUser(h.pool, { name: "pat", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    const pat = await loginAs(h.base, "pat");
    const elsewhere = await loginAs(h.base, "pat");
    await cachedGet(pat, "/builds");
    await cachedGet(elsewhere, "/builds");
    const r = await pat.post("/account/password", { current: PASSWORD, password: "a brand new passphrase" });
    expect(r.status).toBe(303);
    expect((await pat.get("/account")).text).toContain("your 1 other session was logged out");
    expect((await pat.get("/builds")).status).toBe(200);
    // The other browser's session is gone, its cached copy included.
    await eventually(async () => {
      const gone = await elsewhere.get("/builds");
      expect({ status: gone.status, location: gone.location }).toEqual({ status: 303, location: expect.stringMatching(/^\/login/) });
    });
    await expect(loginAs(h.base, "pat")).rejects.toThrow(/login as pat failed: 401/);
    expect((await loginAs(h.base, "pat", "a brand new passphrase")).cookies.size).toBe(1);
  });
});

describe("sessions", () => {
  it("a logged-out session cookie is worthless at once, here and on a second webapp", async () => {
    const peer = await startPeer(h);
    try {
      const vera = await loginAs(h.base, "vera");
      const cookie = [...vera.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      const onPeer = (path: string) => fetch(peer.base + path, { headers: { cookie }, redirect: "manual" });
      expect((await onPeer("/builds")).status).toBe(200);
      expect((await onPeer("/builds")).status).toBe(200);
      expect(peer.caches.sessions.hits).toBeGreaterThan(0);
      await cachedGet(vera, "/builds");
      const stolen = new Map(vera.cookies);
      expect((await vera.post("/logout")).status).toBe(303);
      // The same cookie replayed on this webapp: its session ended with the logout.
      const replay = await fetch(h.base + "/builds", { headers: { cookie: [...stolen].map(([k, v]) => `${k}=${v}`).join("; ") }, redirect: "manual" });
      expect(replay.status).toBe(303);
      // And on the peer, through the sessions trigger.
      await eventually(async () => expect((await onPeer("/builds")).status).toBe(303));
    } finally {
      await peer.close();
    }
  });

  it("a user deactivated through another webapp is logged out here", async () => {
    const peer = await startPeer(h);
    try {
      await createUser(h.pool, { name: "gina", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
      const gina = await loginAs(h.base, "gina");
      await cachedGet(gina, "/builds");
      const alice = await loginAs(peer.base, "alice");
      expect((await alice.post("/users/gina/active", { active: "false" })).status).toBe(303);
      await eventually(async () => expect((await gina.get("/builds")).status).toBe(303));
    } finally {
      await peer.close();
    }
  });
});

describe("nothing crosses from one user to another", () => {
  it("private builds cached for a member never reach a non-member's list, page or API answer", async () => {
    const vera = await loginAs(h.base, "vera");
    const vic = await loginAs(h.base, "vic");
    expect((await cachedGet(vera, "/builds")).text).toContain(`/builds/${ids.secretBuild}"`);
    await cachedGet(vera, `/builds/${ids.secretBuild}`);
    await cachedGet(vera, "/projects/secret");
    const vicList = await cachedGet(vic, "/builds");
    expect(vicList.text).not.toContain(`/builds/${ids.secretBuild}"`);
    expect(vicList.text).not.toContain("secret");
    expect((await vic.get(`/builds/${ids.secretBuild}`)).status).toBe(404);
    expect((await vic.get("/projects/secret")).status).toBe(404);
    await api(h.base, h.users.vera!.token)("GET", "/api/v1/builds?limit=200");
    const vicApi = (await api(h.base, h.users.vic!.token)("GET", "/api/v1/builds?limit=200")).json as { id: number }[];
    expect(vicApi.some((b) => b.id === ids.secretBuild)).toBe(false);
  });

  it("each user gets their own CSRF token and name in a page shared by their role", async () => {
    const alice = await loginAs(h.base, "alice");
    const amy = await loginAs(h.base, "amy");
    const a = await cachedGet(alice, "/projects/pub");
    const hits = h.caches.pages.hits;
    const b = await amy.get("/projects/pub");
    // Both administrators see the same page: the second came from the cache.
    expect(h.caches.pages.hits).toBeGreaterThan(hits);
    const tokensOf = (text: string) => new Set([...text.matchAll(/name="_csrf" value="([^"]+)"/g)].map((m) => m[1]));
    expect(tokensOf(a.text)).toEqual(new Set([alice.csrf]));
    expect(tokensOf(b.text)).toEqual(new Set([amy.csrf]));
    expect(alice.csrf).not.toBe(amy.csrf);
    expect(a.text).toContain('title="Your account and API tokens">alice</a>');
    expect(b.text).toContain('title="Your account and API tokens">amy</a>');
    expect(b.text).not.toContain(">alice</a>");
    // Each token works for its own session only.
    expect((await amy.post("/projects/pub/builds", { configRef: "amy-ref" })).status).toBe(303);
    const forged = await amy.request("POST", "/projects/pub/builds", { form: { _csrf: alice.csrf, configRef: "forged" } });
    expect(forged.status).toBe(403);
  });

  it("a flash message shows to its own session only", async () => {
    const bob = await loginAs(h.base, "bob");
    const olga = await loginAs(h.base, "olga");
    await cachedGet(olga, `/builds/${ids.pubBuild}`);
    const r = await bob.post("/projects/pub/builds", { configRef: "flash-ref" });
    expect(r.status).toBe(303);
    const id = /\/builds\/(\d+)/.exec(r.location!)![1];
    await cachedGet(olga, "/projects/pub");
    const bobPage = await bob.get("/projects/pub");
    expect(bobPage.text).toContain(`Build #${id} of pub is queued.`);
    const olgaPage = await olga.get("/projects/pub");
    expect(olgaPage.text).not.toContain("is queued.");
    // Shown once.
    expect((await bob.get("/projects/pub")).text).not.toContain("is queued.");
    // A request that ends on an error page (a stray /favicon.ico) shows the messages it took;
    // pages name an empty icon so browsers do not make that request at all.
    const again = await bob.post("/projects/pub/builds", { configRef: "flash-ref-2" });
    expect(again.status).toBe(303);
    const stray = await bob.get("/favicon.ico");
    expect(stray.status).toBe(404);
    expect(stray.text).toContain("is queued.");
    expect(bobPage.text).toContain('<link rel="icon" href="data:,">');
  });
});
