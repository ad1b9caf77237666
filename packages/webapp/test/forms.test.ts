// Forms: values come back with one sentence per wrong field; duplicates refused with a message;
// the schedule shows its next run; pages have useful titles and relative times.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getProjectByName, listAudit, listBuilds, SYSTEM_VIEWER } from "@lexbuilder/shared-models/db";
import { Client, loginAs, seedProject, seedSucceededBuild, startHarness, type Harness } from "./harness.js";

let h: Harness;
let bob: Client;
let admin: Client;

beforeAll(async () => {
  h = await startHarness();
  bob = await loginAs(h.base, "bob");
  admin = await loginAs(h.base, "alice");
}, 120_000);

afterAll(async () => {
  await h?.close();
});

function fieldError(html: string, field: string): string | null {
  const m = new RegExp(`<p class="field-error" id="${field}-error">([^<]*)</p>`).exec(html);
  return m ? m[1]!.replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&") : null;
}

const good = {
  name: "demo",
  title: "Demo image",
  description: "A small image",
  configUrl: "https://git.example.org/demo-config.git",
  configRef: "main",
  architecture: "amd64",
  suite: "trixie",
  extraEnv: "FOO=bar",
  priority: "0",
  scheduleKind: "none",
  scheduleDailyAt: "",
  scheduleCron: "",
  scheduleTz: "UTC",
  keepLast: "",
  keepDays: "",
};

describe("project form", () => {
  it("refuses each bad field with a sentence and keeps what was typed", async () => {
    const cases: [Partial<typeof good>, string][] = [
      [{ name: "Bad Name!" }, "name"],
      [{ architecture: "am d64" }, "architecture"],
      [{ configUrl: "ftp://example.org/x.git" }, "configUrl"],
      [{ configUrl: "--upload-pack=touch /tmp/pwned" }, "configUrl"],
      [{ configRef: "-oops" }, "configRef"],
      [{ scheduleKind: "daily", scheduleDailyAt: "25:61" }, "scheduleDailyAt"],
      [{ scheduleKind: "cron", scheduleCron: "61 * * * *" }, "scheduleCron"],
      [{ scheduleTz: "Mars/Olympus" }, "scheduleTz"],
      [{ extraEnv: "no equals sign" }, "extraEnv"],
      [{ priority: "9999" }, "priority"],
    ];
    for (const [change, field] of cases) {
      const form = { ...good, ...change };
      const r = await bob.post("/projects", form);
      expect(r.status, JSON.stringify(change)).toBe(400);
      const error = fieldError(r.text, field);
      expect(error, `${field} for ${JSON.stringify(change)}`).toMatch(/^[A-Z"“].*[.]$/s);
      // What the user typed is still there.
      for (const [k, v] of Object.entries(change)) {
        if (k === "scheduleKind") continue;
        const escaped = v.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;");
        expect(r.text.includes(`value="${escaped}"`) || r.text.includes(`>${escaped}</textarea>`), `${k} kept`).toBe(true);
      }
    }
  });

  it("creates a project (the builder becomes a member), then refuses a duplicate name", async () => {
    const r = await bob.post("/projects", { ...good, private: "on" });
    expect(r.status).toBe(303);
    expect(r.location).toBe("/projects/demo");
    const page = await bob.get("/projects/demo");
    expect(page.text).toContain("<title>demo — Demo image · lexbuilder</title>");
    expect(page.text).toContain("Project demo created.");
    expect((await loginAs(h.base, "olga")).cookies.size).toBe(1);
    const olga = await loginAs(h.base, "olga");
    expect((await olga.get("/projects/demo")).status).toBe(404); // private; olga is no member
    const dup = await bob.post("/projects", good);
    expect(dup.status).toBe(400);
    expect(fieldError(dup.text, "name")).toContain("The name demo is not available; choose another.");
    const audit = await listAudit(h.pool, { objectType: "project" });
    expect(audit.some((a) => a.action === "project.create" && a.actor === "bob")).toBe(true);
  });

  it("a daily time shows the next run on the project page", async () => {
    const r = await bob.post("/projects/demo", { ...good, private: "on", active: "on", scheduleKind: "daily", scheduleDailyAt: "05:45", scheduleTz: "UTC" });
    expect(r.status).toBe(303);
    const page = await bob.get("/projects/demo");
    expect(page.text).toMatch(/every day at <strong>05:45<\/strong>/);
    const next = /<dd id="next-run"><time datetime="([^"]+)" title="([^"]+)">/.exec(page.text);
    expect(next).not.toBeNull();
    const at = new Date(next![1]!);
    expect(at.getTime()).toBeGreaterThan(Date.now());
    expect(at.getTime()).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000);
    expect(at.getUTCHours()).toBe(5);
    expect(at.getUTCMinutes()).toBe(45);
    expect(next![2]).toMatch(/05:45:00 UTC$/);
  });
});

describe("the schedule part of the project form", () => {
  const checkedKind = (html: string) => /<input type="radio" name="scheduleKind" value="(\w+)" checked>/.exec(html)?.[1];

  it("a time typed under 'No schedule' is answered with a sentence, with everything typed kept", async () => {
    const typed = { ...good, name: "sched-a", title: "Kept title", scheduleKind: "none", scheduleDailyAt: "06:30", keepLast: "4" };
    const r = await bob.post("/projects", typed);
    expect(r.status).toBe(400);
    expect(fieldError(r.text, "scheduleDailyAt")).toBe("You typed a time but chose “No schedule”: choose “Every day at” to build daily, or clear the time.");
    for (const v of ["sched-a", "Kept title", "06:30", "4"]) expect(r.text).toContain(`value="${v}"`);
    expect(checkedKind(r.text)).toBe("none");
    expect(await getProjectByName(h.pool, "sched-a", SYSTEM_VIEWER)).toBeNull();
    const cron = await bob.post("/projects", { ...typed, scheduleDailyAt: "", scheduleCron: "30 2 * * 1-5" });
    expect(cron.status).toBe(400);
    expect(fieldError(cron.text, "scheduleCron")).toMatch(/^You typed a cron expression but chose “No schedule”/);
    expect(cron.text).toContain('value="30 2 * * 1-5"');
  });

  it("without any option sent, what was typed chooses: a time is a daily build, an expression a cron one", async () => {
    const { scheduleKind: _none, ...noKind } = good;
    const daily = await bob.post("/projects", { ...noKind, name: "sched-b", scheduleDailyAt: "07:10" });
    expect(daily.status).toBe(303);
    expect((await getProjectByName(h.pool, "sched-b", SYSTEM_VIEWER))!.scheduleDailyAt).toBe("07:10");
    const cron = await bob.post("/projects", { ...noKind, name: "sched-c", scheduleCron: "5 4 * * *" });
    expect(cron.status).toBe(303);
    expect((await getProjectByName(h.pool, "sched-c", SYSTEM_VIEWER))!.scheduleCron).toBe("5 4 * * *");
    const both = await bob.post("/projects", { ...noKind, name: "sched-d", scheduleDailyAt: "07:10", scheduleCron: "5 4 * * *" });
    expect(both.status).toBe(400);
    expect(checkedKind(both.text)).toBe("none");
    expect(both.text).toContain('value="07:10"');
  });

  it("the chosen option wins over a leftover value of the other, and clearing the time removes the schedule", async () => {
    const r = await bob.post("/projects", { ...good, name: "sched-e", scheduleKind: "daily", scheduleDailyAt: "03:00", scheduleCron: "1 1 * * *" });
    expect(r.status).toBe(303);
    const p = (await getProjectByName(h.pool, "sched-e", SYSTEM_VIEWER))!;
    expect([p.scheduleDailyAt, p.scheduleCron]).toEqual(["03:00", null]);
    const off = await bob.post("/projects/sched-e", { ...good, name: "sched-e", active: "on", scheduleKind: "none", scheduleDailyAt: "" });
    expect(off.status).toBe(303);
    expect((await getProjectByName(h.pool, "sched-e", SYSTEM_VIEWER))!.scheduleDailyAt).toBeNull();
  });
});

describe("build requests", () => {
  it("a second identical queued build is refused with a message; a milestone build carries its name", async () => {
    await seedProject(h, "dup");
    const first = await bob.post("/projects/dup/builds");
    expect(first.status).toBe(303);
    const second = await bob.post("/projects/dup/builds");
    expect(second.status).toBe(409);
    expect(second.text).toMatch(/An identical build of dup is already queued \(#\d+\)\./);
    const ms = await bob.post("/projects/dup/builds", { milestone: "2026.11 release", configRef: "v2026.11" });
    expect(ms.status).toBe(303);
    const p = await getProjectByName(h.pool, "dup");
    const builds = await listBuilds(h.pool, { viewer: SYSTEM_VIEWER, projectId: p!.id });
    expect(builds[0]).toMatchObject({ reason: "milestone", milestone: "2026.11 release", configRef: "v2026.11", requestedBy: h.users.bob!.id });
    const detail = await bob.get(ms.location!);
    expect(detail.text).toContain("milestone <strong>2026.11 release</strong>");
    expect(detail.text).toMatch(/<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">just now<\/time>/);
    const badRef = await bob.post("/projects/dup/builds", { configRef: "--upload-pack=x" });
    expect(badRef.status).toBe(400);
    expect(badRef.text).toContain('value="--upload-pack=x"');
  });
});

describe("users and tokens", () => {
  it("admins create users with checked fields; the token is shown once", async () => {
    const bad = await admin.post("/users", { name: "X", role: "overlord", password: "short" });
    expect(bad.status).toBe(400);
    expect(fieldError(bad.text, "name")).toBeTruthy();
    expect(fieldError(bad.text, "role")).toBeTruthy();
    expect(fieldError(bad.text, "password")).toBeTruthy();
    const ok = await admin.post("/users", { name: "newbie", role: "viewer", password: "a long enough password" });
    expect(ok.status).toBe(303);
    const dup = await admin.post("/users", { name: "newbie", role: "viewer", password: "a long enough password" });
    expect(fieldError(dup.text, "name")).toContain("already exists");
    const newbie = await loginAs(h.base, "newbie", "a long enough password");
    const made = await newbie.post("/account/tokens", { label: "ci" });
    expect(made.status).toBe(201);
    const token = /<p class="secret" id="new-token">([^<]+)<\/p>/.exec(made.text)![1]!;
    const again = await newbie.get("/account");
    expect(again.text).not.toContain(token);
    const res = await fetch(`${h.base}/api/v1/projects`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const id = /action="\/account\/tokens\/(\d+)\/revoke"/.exec(again.text)![1]!;
    expect((await newbie.post(`/account/tokens/${id}/revoke`)).status).toBe(303);
    expect((await fetch(`${h.base}/api/v1/projects`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    // Someone else's token cannot be revoked by id.
    expect((await bob.post(`/account/tokens/${id}/revoke`)).status).toBe(404);
  });

  it("roles change and admins cannot lock themselves out", async () => {
    expect((await admin.post("/users/newbie/role", { role: "builder" })).status).toBe(303);
    expect((await admin.get("/users")).text).toContain("newbie now has the builder role.");
    await admin.post("/users/alice/role", { role: "viewer" });
    expect((await admin.get("/users")).text).toContain("You cannot take away your own administrator role");
    expect((await admin.get("/users")).status).toBe(200);
  });
});

describe("error pages", () => {
  it("404 and 403 explain and offer a way on", async () => {
    const nf = await bob.get("/projects/does-not-exist");
    expect(nf.status).toBe(404);
    expect(nf.text).toContain("There is no project named does-not-exist.");
    expect(nf.text).toContain('href="/"');
    const fb = await bob.get("/users");
    expect(fb.status).toBe(403);
    expect(fb.text).toContain("Only administrators may do this.");
    expect(fb.text).toContain("<title>Not allowed · lexbuilder</title>");
  });
});

describe("manifests", () => {
  it("the diff lists added, removed and changed packages; search finds builds by package and version", async () => {
    const p = await seedProject(h, "mani");
    const a = await seedSucceededBuild(h, p.id, { manifest: [["bash", "5.2"], ["gone", "1.0"], ["same", "3"]] });
    const b = await seedSucceededBuild(h, p.id, { manifest: [["bash", "5.3"], ["new", "0.1"], ["same", "3"]] });
    const r = await bob.get(`/diff?from=${a.build.id}&to=${b.build.id}`);
    expect(r.status).toBe(200);
    expect(r.text).toContain("1 added</strong>, <strong class=\"diff-removed\">1 removed</strong>, <strong class=\"diff-changed\">1 changed");
    expect(r.text).toMatch(/<table id="diff-changed">.*<td>bash<\/td><td class="mono diff-removed">5.2<\/td><td class="mono diff-added">5.3<\/td>/s);
    expect(r.text).toMatch(/<table id="diff-added">.*new.*0\.1/s);
    expect(r.text).toMatch(/<table id="diff-removed">.*gone.*1\.0/s);
    expect(r.text).not.toMatch(/<td[^>]*>same<\/td>/);
    const bad = await bob.get("/diff?from=abc&to=1");
    expect(bad.status).toBe(400);
    expect(bad.text).toContain("Give two build numbers to compare.");
    expect((await bob.get(`/diff?from=${a.build.id}&to=99999`)).status).toBe(404);
    const search = await bob.get("/packages?name=bash&version=5.3");
    expect(search.text).toContain(`/builds/${b.build.id}"`);
    expect(search.text).not.toContain(`/builds/${a.build.id}"`);
    // The package rules answer a name or version Debian would not allow, with their sentence.
    const upper = await bob.get("/packages?name=Bash");
    expect(upper.status).toBe(400);
    expect(upper.text).toContain("is not a Debian package name");
    const badVersion = await bob.get("/packages?name=bash&version=5.3-");
    expect(badVersion.status).toBe(400);
    expect(badVersion.text).toContain("is not a Debian version");
    expect((await bob.get(`/builds/${a.build.id}`)).text).toContain(`<a href="/builds/${a.build.id}/manifest">3 packages</a>`);
    const manifest = await bob.get(`/builds/${a.build.id}/manifest?format=text`);
    expect(manifest.text).toBe("bash\t5.2\ngone\t1.0\nsame\t3\n");
  });
});
