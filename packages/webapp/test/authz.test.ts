// The authorisation matrix: every route × anonymous, viewer, builder (member and non-member of
// a private project), admin — through real HTTP against a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBuild, requestBuild } from "@lexbuilder/shared-models/db";
import { Client, loginAs, seedProject, seedSucceededBuild, startHarness, type Harness } from "./harness.js";

let h: Harness;
let clients: Record<string, Client>;
let ids: Record<string, number>;

beforeAll(async () => {
  h = await startHarness();
  const pub = await seedProject(h, "pub", { title: "Public" });
  const priv = await seedProject(h, "priv", { title: "Private", private: true }, ["bob"]);
  const pubBuild = await seedSucceededBuild(h, pub.id, { log: "hello\n", manifest: [["bash", "5.2"]], files: [{ name: "live-image-amd64.tar.tar.gz", kind: "image", content: Buffer.from("public image") }] });
  const privBuild = await seedSucceededBuild(h, priv.id, { log: "secret\n", manifest: [["bash", "5.1"]], files: [{ name: "live-image-amd64.tar.tar.gz", kind: "image", content: Buffer.from("private image") }] });
  const pubBuild2 = await seedSucceededBuild(h, pub.id, { manifest: [["bash", "5.3"]] });
  ids = {
    pub: pub.id,
    priv: priv.id,
    pubBuild: pubBuild.build.id,
    privBuild: privBuild.build.id,
    pubBuild2: pubBuild2.build.id,
    pubArtifact: pubBuild.artifacts[0]!.id,
    privArtifact: privBuild.artifacts[0]!.id,
  };
  clients = {
    anonymous: new Client(h.base),
    viewer: await loginAs(h.base, "vera"),
    builder: await loginAs(h.base, "olga"), // not a member of priv
    member: await loginAs(h.base, "bob"), // builder, member of priv
    admin: await loginAs(h.base, "alice"),
  };
}, 120_000);

afterAll(async () => {
  await h?.close();
});

type Who = "anonymous" | "viewer" | "builder" | "member" | "admin";
const WHO: Who[] = ["anonymous", "viewer", "builder", "member", "admin"];

/** Expected GET status per caller: "login" = redirected to /login. */
function expectGet(minRole: "viewer" | "builder" | "admin", privateObject: boolean): Record<Who, number | "login"> {
  const rank = { viewer: 0, builder: 1, member: 1, admin: 2 } as const;
  const need = { viewer: 0, builder: 1, admin: 2 }[minRole];
  const out = { anonymous: "login" } as Record<Who, number | "login">;
  for (const w of ["viewer", "builder", "member", "admin"] as const) {
    const sees = !privateObject || w === "member" || w === "admin";
    out[w] = !sees ? 404 : rank[w] >= need ? 200 : 403;
  }
  return out;
}

describe("pages (GET)", () => {
  const pages: [string, () => string, "viewer" | "builder" | "admin", boolean][] = [
    ["dashboard", () => "/", "viewer", false],
    ["projects", () => "/projects", "viewer", false],
    ["new project form", () => "/projects/new", "builder", false],
    ["public project", () => "/projects/pub", "viewer", false],
    ["private project", () => "/projects/priv", "viewer", true],
    ["builds", () => "/builds", "viewer", false],
    ["builds of private project", () => "/builds?project=priv", "viewer", true],
    ["public build", () => `/builds/${ids.pubBuild}`, "viewer", false],
    ["private build", () => `/builds/${ids.privBuild}`, "viewer", true],
    ["private build log", () => `/builds/${ids.privBuild}/log`, "viewer", true],
    ["private build manifest", () => `/builds/${ids.privBuild}/manifest`, "viewer", true],
    ["public artifact", () => `/artifacts/${ids.pubArtifact}`, "viewer", false],
    ["private artifact", () => `/artifacts/${ids.privArtifact}`, "viewer", true],
    ["public diff", () => `/diff?from=${ids.pubBuild}&to=${ids.pubBuild2}`, "viewer", false],
    ["diff against a private build", () => `/diff?from=${ids.privBuild}&to=${ids.pubBuild2}`, "viewer", true],
    ["package search", () => "/packages?name=bash", "viewer", false],
    ["builders", () => "/builders", "viewer", false],
    ["add builder form", () => "/builders/new", "admin", false],
    ["users", () => "/users", "admin", false],
    ["account", () => "/account", "viewer", false],
  ];
  for (const [label, path, minRole, priv] of pages) {
    it(`${label}`, async () => {
      const expected = expectGet(minRole, priv);
      for (const who of WHO) {
        const r = await clients[who]!.get(path());
        if (expected[who] === "login") {
          expect(r.status, `${who} GET ${path()}`).toBe(303);
          expect(r.location, `${who} GET ${path()}`).toMatch(/^\/login\?next=/);
        } else {
          expect(r.status, `${who} GET ${path()}`).toBe(expected[who]);
        }
      }
    });
  }

  it("the private project's existence does not leak through lists or search", async () => {
    for (const who of ["viewer", "builder"] as const) {
      const c = clients[who]!;
      expect((await c.get("/projects")).text).not.toContain("priv");
      expect((await c.get("/builds")).text).not.toContain(`/builds/${ids.privBuild}"`);
      // The version cell, not any "5.1" (a timestamp such as 17:15:05.148 has one).
      expect((await c.get("/packages?name=bash")).text).not.toContain(`class="mono">5.1<`);
      expect((await c.get("/")).text).not.toContain("/projects/priv");
    }
    expect((await clients.member!.get("/packages?name=bash")).text).toContain(`class="mono">5.1<`);
    expect((await clients.admin!.get("/projects")).text).toContain("/projects/priv");
  });

  it("the live log stream answers 404 for a private build to non-members", async () => {
    for (const who of ["viewer", "builder"] as const) {
      expect((await clients[who]!.get(`/builds/${ids.privBuild}/log/stream`)).status).toBe(404);
    }
    expect((await clients.anonymous!.get(`/builds/${ids.privBuild}/log/stream`)).status).toBe(303);
  });
});

describe("actions (POST)", () => {
  it("requesting a build: anonymous → login, viewer → 403, non-member on private → 404, builder/admin → queued", async () => {
    const r0 = await clients.anonymous!.post("/projects/pub/builds", {}, false);
    expect(r0.status).toBe(303);
    expect(r0.location).toBe("/login");
    expect((await clients.viewer!.post("/projects/pub/builds", { milestone: "v-viewer" })).status).toBe(403);
    expect((await clients.builder!.post("/projects/priv/builds", { milestone: "v-outsider" })).status).toBe(404);
    expect((await clients.viewer!.post("/projects/priv/builds", { milestone: "v-viewer2" })).status).toBe(404);
    const ok = await clients.builder!.post("/projects/pub/builds", { milestone: "v-builder" });
    expect(ok.status).toBe(303);
    expect(ok.location).toMatch(/^\/builds\/\d+$/);
    const member = await clients.member!.post("/projects/priv/builds", { milestone: "v-member" });
    expect(member.status).toBe(303);
    const admin = await clients.admin!.post("/projects/priv/builds", { milestone: "v-admin" });
    expect(admin.status).toBe(303);
  });

  it("cancel and retry follow the roles and visibility", async () => {
    const b = await requestBuild(h.pool, { projectId: ids.priv!, reason: "manual", configRef: "cancel-me" });
    expect((await clients.viewer!.post(`/builds/${b.id}/cancel`)).status).toBe(404);
    expect((await clients.builder!.post(`/builds/${b.id}/cancel`)).status).toBe(404);
    const pubQueued = await requestBuild(h.pool, { projectId: ids.pub!, reason: "manual", configRef: "cancel-me-too" });
    expect((await clients.viewer!.post(`/builds/${pubQueued.id}/cancel`)).status).toBe(403);
    const r = await clients.member!.post(`/builds/${b.id}/cancel`);
    expect(r.status).toBe(303);
    expect((await getBuild(h.pool, b.id))!.state).toBe("CANCELLED");
    expect((await clients.viewer!.post(`/builds/${b.id}/retry`)).status).toBe(404);
    const retry = await clients.member!.post(`/builds/${b.id}/retry`);
    expect(retry.status).toBe(303);
    expect(retry.location).not.toBe(`/builds/${b.id}`);
  });

  it("editing a project: admins and builder members only", async () => {
    expect((await clients.viewer!.get("/projects/pub/edit")).status).toBe(403);
    expect((await clients.builder!.get("/projects/pub/edit")).status).toBe(403); // not a member of pub
    expect((await clients.builder!.get("/projects/priv/edit")).status).toBe(404);
    expect((await clients.member!.get("/projects/priv/edit")).status).toBe(200);
    expect((await clients.admin!.get("/projects/pub/edit")).status).toBe(200);
    const form = { name: "priv", configUrl: "https://git.example.org/config.git", configRef: "main", architecture: "amd64", suite: "trixie", title: "Renamed by member", private: "on", active: "on", scheduleKind: "none", scheduleTz: "UTC" };
    expect((await clients.builder!.post("/projects/priv", form)).status).toBe(404);
    expect((await clients.viewer!.post("/projects/pub", { ...form, name: "pub" })).status).toBe(403);
    const ok = await clients.member!.post("/projects/priv", form);
    expect(ok.status).toBe(303);
    expect((await clients.member!.get("/projects/priv")).text).toContain("Renamed by member");
  });

  it("admin-only actions refuse builders and viewers", async () => {
    for (const who of ["viewer", "builder", "member"] as const) {
      const c = clients[who]!;
      expect((await c.post("/users", { name: "mallory", role: "admin", password: "long enough password" })).status).toBe(403);
      expect((await c.post("/users/vera/role", { role: "admin" })).status).toBe(403);
      expect((await c.post("/users/vera/active", { active: "false" })).status).toBe(403);
      expect((await c.post("/builders", { name: "b1", url: "http://127.0.0.1:1", token: "t" })).status).toBe(403);
      expect((await c.post("/projects/pub/members", { member: String(h.users.vera!.id) })).status).toBe(403);
    }
    const anon = new Client(h.base);
    expect((await anon.get("/users")).status).toBe(303);
  });

  it("every form route sends anonymous callers to the login page and changes nothing", async () => {
    const anon = new Client(h.base);
    await anon.get("/login"); // a session with a CSRF token, but no user
    for (const path of [
      "/projects",
      "/projects/pub",
      "/projects/pub/builds",
      "/projects/pub/members",
      `/builds/${ids.pubBuild}/cancel`,
      `/builds/${ids.pubBuild}/retry`,
      "/builders",
      "/builders/amd/enable",
      "/builders/amd/disable",
      "/users",
      "/users/vera/role",
      "/users/vera/active",
      "/account/tokens",
      "/account/tokens/1/revoke",
      "/account/password",
    ]) {
      const r = await anon.post(path, { name: "x", role: "admin", active: "false", reason: "r", label: "l" });
      expect(r.status, path).toBe(303);
      expect(r.location, path).toBe("/login");
    }
  });

  it("creating projects: builders and admins; viewers get 403", async () => {
    const form = { configUrl: "https://git.example.org/c.git", configRef: "main", architecture: "amd64", suite: "trixie", scheduleKind: "none", scheduleTz: "UTC" };
    expect((await clients.viewer!.post("/projects", { ...form, name: "by-viewer" })).status).toBe(403);
    expect((await clients.viewer!.get("/projects/by-viewer")).status).toBe(404);
    expect((await clients.builder!.post("/projects", { ...form, name: "by-builder" })).status).toBe(303);
    expect((await clients.admin!.post("/projects", { ...form, name: "by-admin" })).status).toBe(303);
    // The builder who created it may edit it (a member); another builder may not.
    expect((await clients.builder!.get("/projects/by-builder/edit")).status).toBe(200);
    expect((await clients.member!.get("/projects/by-builder/edit")).status).toBe(403);
  });

  it("the API gives admins every project and members their private ones", async () => {
    const get = (token: string, path: string) => fetch(h.base + path, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await get(h.users.alice!.token, "/api/v1/projects/priv")).toBe(200);
    expect(await get(h.users.alice!.token, `/api/v1/builds/${ids.privBuild}`)).toBe(200);
    expect(await get(h.users.bob!.token, `/api/v1/builds/${ids.privBuild}/manifest`)).toBe(200);
    expect(await get(h.users.olga!.token, `/api/v1/builds/${ids.privBuild}/manifest`)).toBe(404);
    expect(await get(h.users.vera!.token, `/api/v1/artifacts/${ids.privArtifact}`)).toBe(404);
    expect(await get(h.users.alice!.token, `/api/v1/artifacts/${ids.privArtifact}`)).toBe(200);
  });

  it("a deactivated user loses the session and the API at once", async () => {
    const tmp = await loginAs(h.base, "vera");
    expect((await tmp.get("/")).status).toBe(200);
    expect((await clients.admin!.post("/users/vera/active", { active: "false" })).status).toBe(303);
    expect((await tmp.get("/")).status).toBe(303);
    const res = await fetch(`${h.base}/api/v1/projects`, { headers: { authorization: `Bearer ${h.users.vera!.token}` } });
    expect(res.status).toBe(401);
    expect((await clients.admin!.post("/users/vera/active", { active: "true" })).status).toBe(303);
    expect((await loginAs(h.base, "vera")).cookies.size).toBe(1);
  });
});
