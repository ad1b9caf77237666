import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, recordNotifications, type TestDatabase } from "../testing/index.js";
import {
  ANONYMOUS_VIEWER,
  createProject,
  deactivateProject,
  getProjectById,
  getProjectByName,
  isProjectMember,
  listProjectMembers,
  listProjects,
  listScheduledProjects,
  ProjectExistsError,
  projectVisibilitySql,
  setProjectMembers,
  setScheduleTimes,
  SYSTEM_VIEWER,
  updateProject,
  type Viewer,
} from "../src/db/projects.js";
import { requestBuild } from "../src/db/builds.js";
import { cancelBuild } from "../src/db/build-transitions.js";
import { createUser } from "../src/db/users.js";
import { Channel } from "../src/db/channels.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const cfg = { configUrl: "https://example.org/c.git", architecture: "amd64" };

describe("projects", () => {
  it("creates with schema defaults and reads back camelCase with Dates", async () => {
    const p = await createProject(db.pool, { name: "alpha", ...cfg });
    expect(p).toMatchObject({
      name: "alpha",
      title: "",
      description: "",
      configRef: "main",
      suite: "trixie",
      extraEnv: {},
      priority: 0,
      active: true,
      private: false,
      scheduleDailyAt: null,
      scheduleCron: null,
      scheduleTz: "UTC",
      keepLast: null,
      keepDays: null,
    });
    expect(p.createdAt).toBeInstanceOf(Date);
    expect(await getProjectById(db.pool, p.id)).toEqual(p);
    expect(await getProjectByName(db.pool, "alpha")).toEqual(p);
    expect(await getProjectByName(db.pool, "nope")).toBeNull();
    await expect(createProject(db.pool, { name: "alpha", ...cfg })).rejects.toThrow(new ProjectExistsError("alpha").message);
    expect(new ProjectExistsError("alpha").message).toBe("A project named alpha already exists; choose another name.");
  });

  it("stores every input field, and updates only what a patch names", async () => {
    const p = await createProject(db.pool, {
      name: "beta",
      title: "Beta",
      description: "d",
      configUrl: "git://example.org/b.git",
      configRef: "v2",
      architecture: "arm64",
      suite: "bookworm",
      extraEnv: { MIRROR: "http://m" },
      priority: 5,
      private: true,
      scheduleDailyAt: "02:30",
      scheduleTz: "Europe/Berlin",
      keepLast: 3,
      keepDays: 14,
    });
    expect(p).toMatchObject({ title: "Beta", architecture: "arm64", extraEnv: { MIRROR: "http://m" }, scheduleDailyAt: "02:30", keepLast: 3, keepDays: 14, private: true });
    const u = (await updateProject(db.pool, p.id, { title: "Beta 2", scheduleCron: "0 3 * * *", keepLast: null }))!;
    expect(u).toMatchObject({ name: "beta", title: "Beta 2", scheduleCron: "0 3 * * *", scheduleDailyAt: null, keepLast: null, keepDays: 14, priority: 5 });
    expect(u.updatedAt.getTime()).toBeGreaterThanOrEqual(p.updatedAt.getTime());
    const back = (await updateProject(db.pool, p.id, { scheduleDailyAt: "04:00" }))!;
    expect(back).toMatchObject({ scheduleDailyAt: "04:00", scheduleCron: null });
    expect(await updateProject(db.pool, 999999, { title: "x" })).toBeNull();
    await createProject(db.pool, { name: "gamma", ...cfg });
    await expect(updateProject(db.pool, p.id, { name: "gamma" })).rejects.toBeInstanceOf(ProjectExistsError);
  });

  it("notifies the projects channel on create, update and deactivate", async () => {
    const recorder = await recordNotifications(db.url, Channel.projects);
    const p = await createProject(db.pool, { name: "noisy", ...cfg });
    await updateProject(db.pool, p.id, { priority: 1 });
    expect(await deactivateProject(db.pool, p.id)).toBe(true);
    expect(await deactivateProject(db.pool, p.id)).toBe(false);
    await recorder.settle();
    await recorder.close();
    // Three, not four: deactivating twice notifies once.
    expect(recorder.got).toEqual([{ id: p.id }, { id: p.id }, { id: p.id }]);
  });
});

describe("visibility", () => {
  it("shows private projects only to admins and members, in every list and lookup", async () => {
    const admin = await createUser(db.pool, { name: "vadmin", role: "admin", passwordHash: "scrypt$x" });
    const member = await createUser(db.pool, { name: "vmember", role: "viewer", passwordHash: "scrypt$x" });
    const outsider = await createUser(db.pool, { name: "voutsider", role: "builder", passwordHash: "scrypt$x" });
    const pub = await createProject(db.pool, { name: "v-public", ...cfg });
    const priv = await createProject(db.pool, { name: "v-private", ...cfg, private: true });
    await setProjectMembers(db.pool, priv.id, [member.id, member.id]);
    const viewers: [string, Viewer, boolean][] = [
      ["admin", { userId: admin.id, role: "admin" }, true],
      ["system", SYSTEM_VIEWER, true],
      ["member", { userId: member.id, role: "viewer" }, true],
      ["outsider", { userId: outsider.id, role: "builder" }, false],
      ["anonymous", ANONYMOUS_VIEWER, false],
    ];
    for (const [who, viewer, seesPrivate] of viewers) {
      const names = (await listProjects(db.pool, viewer)).map((p) => p.name);
      expect(names.includes("v-public"), who).toBe(true);
      expect(names.includes("v-private"), who).toBe(seesPrivate);
      expect((await getProjectByName(db.pool, "v-private", viewer)) !== null, who).toBe(seesPrivate);
      expect((await getProjectById(db.pool, priv.id, viewer)) !== null, who).toBe(seesPrivate);
      expect(await getProjectByName(db.pool, "v-public", viewer), who).not.toBeNull();
    }
    expect(pub.private).toBe(false);
  });

  it("builds its condition with numbered parameters and refuses odd aliases", () => {
    const params: unknown[] = ["x"];
    expect(projectVisibilitySql("p", { userId: 7, role: "viewer" }, params)).toContain("pm.user_id = $2");
    expect(params).toEqual(["x", 7]);
    expect(projectVisibilitySql("p", { userId: 7, role: "admin" }, params)).toBe("TRUE");
    expect(projectVisibilitySql("p", ANONYMOUS_VIEWER, params)).toBe("(NOT p.private)");
    expect(() => projectVisibilitySql("p; DROP TABLE x", ANONYMOUS_VIEWER, params)).toThrow();
  });
});

describe("members", () => {
  it("replaces the member list and answers membership", async () => {
    const a = await createUser(db.pool, { name: "ma", role: "viewer", passwordHash: "scrypt$x" });
    const b = await createUser(db.pool, { name: "mb", role: "builder", passwordHash: "scrypt$x" });
    const c = await createUser(db.pool, { name: "mc", role: "viewer", passwordHash: "scrypt$x" });
    const p = await createProject(db.pool, { name: "members", ...cfg, private: true });
    await setProjectMembers(db.pool, p.id, [a.id, b.id]);
    expect((await listProjectMembers(db.pool, p.id)).map((m) => m.name)).toEqual(["ma", "mb"]);
    await setProjectMembers(db.pool, p.id, [b.id, c.id]);
    expect(await listProjectMembers(db.pool, p.id)).toEqual([
      { userId: b.id, name: "mb", role: "builder", active: true },
      { userId: c.id, name: "mc", role: "viewer", active: true },
    ]);
    expect(await isProjectMember(db.pool, p.id, a.id)).toBe(false);
    expect(await isProjectMember(db.pool, p.id, c.id)).toBe(true);
    await setProjectMembers(db.pool, p.id, []);
    expect(await listProjectMembers(db.pool, p.id)).toEqual([]);
  });
});

describe("lists and schedules", () => {
  it("lists projects with their latest build", async () => {
    const p = await createProject(db.pool, { name: "with-builds", ...cfg });
    const b1 = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    await cancelBuild(db.pool, b1.id);
    const b2 = await requestBuild(db.pool, { projectId: p.id, reason: "manual" });
    const row = (await listProjects(db.pool, SYSTEM_VIEWER)).find((x) => x.name === "with-builds")!;
    expect(row).toMatchObject({ lastBuildId: b2.id, lastBuildState: "QUEUED", lastBuildFinishedAt: null });
    await cancelBuild(db.pool, b2.id);
    const again = (await listProjects(db.pool, SYSTEM_VIEWER)).find((x) => x.name === "with-builds")!;
    expect(again.lastBuildState).toBe("CANCELLED");
    expect(again.lastBuildFinishedAt).toBeInstanceOf(Date);
    const none = (await listProjects(db.pool, SYSTEM_VIEWER)).find((x) => x.name === "alpha")!;
    expect(none).toMatchObject({ lastBuildId: null, lastBuildState: null });
    const inactive = await createProject(db.pool, { name: "sleeping", ...cfg, active: false });
    expect((await listProjects(db.pool, SYSTEM_VIEWER, { includeInactive: false })).some((x) => x.id === inactive.id)).toBe(false);
    expect((await listProjects(db.pool, SYSTEM_VIEWER)).some((x) => x.id === inactive.id)).toBe(true);
  });

  it("lists active scheduled projects and records run times", async () => {
    const daily = await createProject(db.pool, { name: "s-daily", ...cfg, scheduleDailyAt: "01:00" });
    const cron = await createProject(db.pool, { name: "s-cron", ...cfg, scheduleCron: "0 1 * * 1" });
    const off = await createProject(db.pool, { name: "s-off", ...cfg, scheduleDailyAt: "01:00", active: false });
    await createProject(db.pool, { name: "s-none", ...cfg });
    const ids = (await listScheduledProjects(db.pool)).map((p) => p.id);
    expect(ids).toContain(daily.id);
    expect(ids).toContain(cron.id);
    expect(ids).not.toContain(off.id);
    const next = new Date("2030-01-01T01:00:00Z");
    expect(await setScheduleTimes(db.pool, daily.id, { nextRun: next })).toBe(true);
    expect(await getProjectById(db.pool, daily.id)).toMatchObject({ scheduleNextRun: next, scheduleLastRun: null });
    const last = new Date("2029-12-31T01:00:00Z");
    await setScheduleTimes(db.pool, daily.id, { lastRun: last, nextRun: null });
    expect(await getProjectById(db.pool, daily.id)).toMatchObject({ scheduleNextRun: null, scheduleLastRun: last });
    expect(await setScheduleTimes(db.pool, 999999, { nextRun: null })).toBe(false);
  });
});
