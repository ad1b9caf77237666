// The action layer (src/actions/): who may act, the change and its audit row committing or
// rolling back together, and the caches dropped by the action itself — called directly and
// through both the console and the API, against a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import {
  getBuildRow,
  getProjectByName,
  listAudit,
  listBuilds,
  SYSTEM_VIEWER,
  type Project,
} from "@lexbuilder/shared-models/db";
import { cancelBuild, requestBuild, retryBuild } from "../src/actions/builds.js";
import { ActionError } from "../src/actions/errors.js";
import { createProject, setProjectMembers, updateProject } from "../src/actions/projects.js";
import type { CurrentUser } from "../src/auth.js";
import type { AppContext } from "../src/context.js";
import { api, loginAs, projectInput, seedProject, startHarness, type Client, type Harness } from "./harness.js";

let h: Harness;
let ctx: AppContext;
let pub: Project;
let priv: Project;
const who: Record<string, CurrentUser> = {};

beforeAll(async () => {
  h = await startHarness();
  ctx = { pool: h.pool, config: h.config, log: pino({ level: "silent" }), caches: h.caches };
  for (const [name, u] of Object.entries(h.users)) who[name] = { id: u.id, name, role: u.role };
  pub = await seedProject(h, "pub");
  priv = await seedProject(h, "priv", { private: true }, ["bob"]);
}, 120_000);

afterAll(async () => {
  await h?.close();
});

async function refusal(p: Promise<unknown>): Promise<ActionError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ActionError);
  return err as ActionError;
}

describe("permissions", () => {
  it("a viewer may not request, cancel or retry; a private project does not exist for non-members", async () => {
    const viewer = await refusal(requestBuild(ctx, who.vera!, { projectName: "pub", via: "web" }));
    expect(viewer.status).toBe(403);
    expect(viewer.message).toMatch(/^Your role allows reading only; .*\.$/);
    const hidden = await refusal(requestBuild(ctx, who.olga!, { projectName: "priv", via: "api" }));
    expect([hidden.status, hidden.message]).toEqual([404, "There is no project named priv."]);
    const { build } = await requestBuild(ctx, who.bob!, { projectName: "priv", via: "web" });
    expect((await refusal(cancelBuild(ctx, who.olga!, { buildId: build.id, via: "web" }))).status).toBe(404);
    expect((await refusal(cancelBuild(ctx, who.vera!, { buildId: build.id, via: "web" }))).status).toBe(404);
    const { build: pubBuild } = await requestBuild(ctx, who.bob!, { projectName: "pub", via: "web" });
    expect((await refusal(cancelBuild(ctx, who.vera!, { buildId: pubBuild.id, via: "api" }))).status).toBe(403);
    expect((await refusal(retryBuild(ctx, who.vera!, { buildId: pubBuild.id, via: "api" }))).status).toBe(403);
    // Refused actions changed nothing.
    expect((await getBuildRow(h.pool, pubBuild.id))!.state).toBe("QUEUED");
  });

  it("projects: viewers create nothing, non-member builders edit nothing, only admins set members", async () => {
    expect((await refusal(createProject(ctx, who.vera!, projectInput("nope")))).status).toBe(403);
    expect(await getProjectByName(h.pool, "nope", SYSTEM_VIEWER)).toBeNull();
    expect((await refusal(updateProject(ctx, who.olga!, { projectName: "pub", project: projectInput("pub", { title: "taken over" }) }))).status).toBe(403);
    expect((await refusal(updateProject(ctx, who.olga!, { projectName: "priv", project: projectInput("priv") }))).status).toBe(404);
    expect((await refusal(setProjectMembers(ctx, who.bob!, { projectName: "priv", memberIds: [who.olga!.id] }))).status).toBe(403);
    expect((await getProjectByName(h.pool, "pub", SYSTEM_VIEWER))!.title).toBe(pub.title);
  });

  it("a builder who creates a project becomes its member and may edit it; a taken name names the field", async () => {
    const created = await createProject(ctx, who.olga!, projectInput("olgas"));
    const edited = await updateProject(ctx, who.olga!, { projectName: "olgas", project: projectInput("olgas", { title: "Olga's image", scheduleDailyAt: "04:15", scheduleTz: "UTC" }) });
    expect([edited.id, edited.title, edited.scheduleDailyAt]).toEqual([created.id, "Olga's image", "04:15"]);
    const taken = await refusal(createProject(ctx, who.olga!, projectInput("olgas")));
    expect([taken.status, taken.field]).toEqual([400, "name"]);
  });
});

describe("the audit row", () => {
  it("is written with the change, saying which path it came by", async () => {
    const { build } = await requestBuild(ctx, who.bob!, { projectName: "pub", milestone: "2.0", via: "api" });
    const { state } = await cancelBuild(ctx, who.bob!, { buildId: build.id, via: "web" });
    expect(state).toBe("CANCELLED");
    const { retry } = await retryBuild(ctx, who.bob!, { buildId: build.id, via: "web" });
    const rows = await listAudit(h.pool, { objectType: "build" });
    const find = (action: string, id: number) => rows.find((r) => r.action === action && r.objectId === String(id));
    expect(find("build.request", build.id)?.details).toMatchObject({ project: "pub", milestone: "2.0", via: "api" });
    expect(find("build.cancel", build.id)?.details).toMatchObject({ from: "QUEUED", to: "CANCELLED", via: "web" });
    expect(find("build.retry", retry.id)?.details).toMatchObject({ retryOf: build.id, via: "web" });
    expect(find("build.cancel", build.id)?.actor).toBe("bob");
  });

  it("failing takes the change back with it: no build, no state change, no project edit", async () => {
    const { build } = await requestBuild(ctx, who.bob!, { projectName: "pub", configRef: "audit-test", via: "web" });
    const before = await listBuilds(h.pool, { viewer: SYSTEM_VIEWER, projectId: pub.id, limit: 200 });
    await h.pool.query(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$`);
    await h.pool.query(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()`);
    try {
      await expect(requestBuild(ctx, who.bob!, { projectName: "pub", configRef: "never", via: "api" })).rejects.toThrow("audit refused");
      await expect(cancelBuild(ctx, who.bob!, { buildId: build.id, via: "web" })).rejects.toThrow("audit refused");
      await expect(updateProject(ctx, who.alice!, { projectName: "pub", project: projectInput("pub", { title: "never saved" }) })).rejects.toThrow("audit refused");
      await expect(setProjectMembers(ctx, who.alice!, { projectName: "pub", memberIds: [who.olga!.id] })).rejects.toThrow("audit refused");
    } finally {
      await h.pool.query("DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()");
    }
    expect(await listBuilds(h.pool, { viewer: SYSTEM_VIEWER, projectId: pub.id, limit: 200 })).toHaveLength(before.length);
    expect((await getBuildRow(h.pool, build.id))!.state).toBe("QUEUED");
    expect((await getProjectByName(h.pool, "pub", SYSTEM_VIEWER))!.title).not.toBe("never saved");
    const { rows } = await h.pool.query("SELECT count(*)::int AS n FROM project_members WHERE project_id = $1", [pub.id]);
    expect(rows[0].n).toBe(0);
  });
});

describe("the caches", () => {
  // With the database's own cache notifications for builds switched off, only the action's
  // invalidation can make the next page show the change.
  async function withoutBuildNotifications(fn: () => Promise<void>) {
    await h.pool.query("ALTER TABLE builds DISABLE TRIGGER builds_cache_insert, DISABLE TRIGGER builds_cache_update");
    try {
      await fn();
    } finally {
      await h.pool.query("ALTER TABLE builds ENABLE TRIGGER builds_cache_insert, ENABLE TRIGGER builds_cache_update");
    }
  }

  it("are dropped by requests, cancels and retries from the console and the API alike", async () => {
    const bob: Client = await loginAs(h.base, "bob");
    const bobApi = api(h.base, h.users.bob!.token);
    const { build } = await requestBuild(ctx, who.bob!, { projectName: "pub", configRef: "cache-test", via: "web" });
    await withoutBuildNotifications(async () => {
      const listPage = `/builds?project=pub&state=CANCELLED`;
      const listed = (path: string) => bob.get(path).then((r) => r.text.includes(`href="/builds/${build.id}"`));
      const apiListed = () => bobApi("GET", "/api/v1/builds?project=pub&state=CANCELLED").then((r) => (r.json as { id: number }[]).some((b) => b.id === build.id));
      expect(await listed(listPage)).toBe(false);
      expect(await apiListed()).toBe(false);
      expect(h.caches.pages.size + h.caches.json.size).toBeGreaterThan(0);
      // Cancelled through the API: the console's cached list and the API's both see it at once.
      expect((await bobApi("POST", `/api/v1/builds/${build.id}/cancel`)).status).toBe(200);
      expect(await listed(listPage)).toBe(true);
      expect(await apiListed()).toBe(true);
      // Retried through the console: the queued list shows the retry at once.
      const queuedPage = `/builds?project=pub&state=QUEUED`;
      expect(await listed(queuedPage)).toBe(false); // cancelled; and the page is now cached
      const retried = await bob.post(`/builds/${build.id}/retry`);
      expect(retried.status).toBe(303);
      const retryId = Number(/\/builds\/(\d+)$/.exec(retried.location!)![1]);
      expect((await bob.get(queuedPage)).text).toContain(`href="/builds/${retryId}"`);
    });
  });
});
