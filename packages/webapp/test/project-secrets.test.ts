// A project's secrets (config-URL credentials, extra-environment values) are for those who
// manage it; users without access to a private project learn nothing of it (running builds on
// the builders page and dashboard, whether its name is taken).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getProjectByName, listAudit, requestBuild, SYSTEM_VIEWER } from "@lexbuilder/shared-models/db";
import { addDriverBuilder, driveBuild } from "@lexbuilder/shared-models/testing";
import { api, loginAs, seedProject, startHarness, type Client, type Harness } from "./harness.js";

const TOKEN = "s3cr3t-token-4711";
const VALUE = "hunter2-value-0815";
const URL_WITH_TOKEN = `https://ci:${TOKEN}@git.example.org/config.git`;
let h: Harness;
let alice: Client;
let bob: Client;
let olga: Client;
let vera: Client;

beforeAll(async () => {
  h = await startHarness();
  // bob manages "sec" (builder member); vera is a viewer member; olga a builder outside it.
  await seedProject(h, "sec", { configUrl: URL_WITH_TOKEN, extraEnv: { API_TOKEN: VALUE, MIRROR: "http://deb.example.org" } }, ["bob", "vera"]);
  [alice, bob, olga, vera] = await Promise.all(["alice", "bob", "olga", "vera"].map((n) => loginAs(h.base, n)));
}, 120_000);

afterAll(async () => {
  await h?.close();
});

function formValue(html: string, name: string): string {
  const input = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (input) return input[1]!;
  return new RegExp(`name="${name}"[^>]*>([^<]*)</textarea>`).exec(html)?.[1] ?? "";
}

describe("project secrets", () => {
  it("owners and admins see them; a viewer member and other users see them masked, on the page and in the API", async () => {
    for (const c of [alice, bob]) {
      const page = await c.get("/projects/sec");
      expect(page.status).toBe(200);
      expect(page.text).toContain(URL_WITH_TOKEN);
      expect(page.text).toContain(`API_TOKEN=${VALUE}`);
    }
    for (const c of [olga, vera]) {
      const page = await c.get("/projects/sec");
      expect(page.status).toBe(200);
      expect(page.text).not.toContain(TOKEN);
      expect(page.text).not.toContain(VALUE);
      expect(page.text).toContain("https://***@git.example.org/config.git");
      expect(page.text).toContain("API_TOKEN=********");
      expect(page.text).toContain("MIRROR=********");
    }
    for (const [name, sees] of [["alice", true], ["bob", true], ["olga", false], ["vera", false]] as const) {
      const call = api(h.base, h.users[name]!.token);
      const one = await call("GET", "/api/v1/projects/sec");
      const listed = (await call("GET", "/api/v1/projects")).json.find((p: { name: string }) => p.name === "sec");
      for (const p of [one.json, listed]) {
        expect(p.configUrl, name).toBe(sees ? URL_WITH_TOKEN : "https://***@git.example.org/config.git");
        expect(p.extraEnv, name).toEqual(sees ? { API_TOKEN: VALUE, MIRROR: "http://deb.example.org" } : { API_TOKEN: "********", MIRROR: "********" });
      }
    }
  });

  it("the edit form shows them masked; sending the masked text back keeps them; a new value replaces one", async () => {
    const form = await bob.get("/projects/sec/edit");
    expect(form.status).toBe(200);
    expect(form.text).not.toContain(TOKEN);
    expect(form.text).not.toContain(VALUE);
    expect(formValue(form.text, "configUrl")).toBe("https://***@git.example.org/config.git");
    const fields = {
      name: "sec",
      title: "Renamed title",
      configUrl: formValue(form.text, "configUrl"),
      configRef: "main",
      architecture: "amd64",
      suite: "trixie",
      extraEnv: formValue(form.text, "extraEnv"),
      priority: "0",
      private: "",
      active: "on",
      scheduleKind: "none",
      scheduleTz: "UTC",
    };
    expect(fields.extraEnv).toContain("API_TOKEN=********");
    expect((await bob.post("/projects/sec", fields)).status).toBe(303);
    let stored = (await getProjectByName(h.pool, "sec", SYSTEM_VIEWER))!;
    expect(stored.title).toBe("Renamed title");
    expect(stored.configUrl).toBe(URL_WITH_TOKEN);
    expect(stored.extraEnv).toEqual({ API_TOKEN: VALUE, MIRROR: "http://deb.example.org" });

    // One value typed anew, a variable added: those change, the masked one is kept.
    const changed = { ...fields, extraEnv: "API_TOKEN=********\nMIRROR=http://other.example.org\nNEW=1" };
    expect((await bob.post("/projects/sec", changed)).status).toBe(303);
    stored = (await getProjectByName(h.pool, "sec", SYSTEM_VIEWER))!;
    expect(stored.extraEnv).toEqual({ API_TOKEN: VALUE, MIRROR: "http://other.example.org", NEW: "1" });

    // The masked credentials with another address cannot be carried over: asked for again.
    const moved = await bob.post("/projects/sec", { ...fields, configUrl: "https://***@elsewhere.example.org/config.git" });
    expect(moved.status).toBe(400);
    expect(moved.text).toContain("The address changed, so its hidden credentials cannot be kept");
    expect((await getProjectByName(h.pool, "sec", SYSTEM_VIEWER))!.configUrl).toBe(URL_WITH_TOKEN);
  });

  it("the audit log holds them masked", async () => {
    const made = await bob.post("/projects", {
      name: "sec2",
      configUrl: `https://deploy:${TOKEN}@git.example.org/other.git`,
      configRef: "main",
      architecture: "amd64",
      suite: "trixie",
      extraEnv: `KEY=${VALUE}`,
      priority: "0",
      scheduleKind: "none",
      scheduleTz: "UTC",
    });
    expect(made.status).toBe(303);
    const rows = await listAudit(h.pool, { objectType: "project" });
    expect(rows.some((r) => r.action === "project.create")).toBe(true);
    expect(rows.some((r) => r.action === "project.update")).toBe(true);
    const text = JSON.stringify(rows);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(VALUE);
    expect(text).toContain("https://***@git.example.org/other.git");
    expect(text).toContain("API_TOKEN=********");
  });
});

describe("private projects leave no trace", () => {
  it("a builder busy with a private build shows no current build to a non-member, on the builders page and the dashboard", async () => {
    const hidden = await seedProject(h, "hidden", { private: true }, ["bob"]);
    const open = await seedProject(h, "open");
    const hiddenBuild = await requestBuild(h.pool, { projectId: hidden.id, reason: "manual", priority: 1_000_000 });
    await driveBuild(h.pool, hiddenBuild.id, "BUILDING", { builderId: await addDriverBuilder(h.pool, "amd64") });
    const openBuild = await requestBuild(h.pool, { projectId: open.id, reason: "manual", priority: 1_000_000 });
    await driveBuild(h.pool, openBuild.id, "BUILDING", { builderId: await addDriverBuilder(h.pool, "amd64") });
    for (const path of ["/builders", "/"]) {
      for (const c of [alice, bob]) {
        const page = await c.get(path);
        expect(page.text, path).toContain(`href="/builds/${hiddenBuild.id}"`);
      }
      for (const c of [olga, vera]) {
        const page = await c.get(path);
        expect(page.status).toBe(200);
        // The public build on the other builder shows, the private one not even as a number.
        expect(page.text, path).toContain(`href="/builds/${openBuild.id}"`);
        expect(page.text, path).not.toContain(`/builds/${hiddenBuild.id}"`);
        expect(page.text, path).not.toContain(`#${hiddenBuild.id}<`);
      }
    }
  });

  it("a taken name reads 'not available' the same way whether a private or a public project holds it", async () => {
    await seedProject(h, "secret-name", { private: true }, ["bob"]);
    await seedProject(h, "public-name");
    const answers: string[] = [];
    for (const name of ["secret-name", "public-name"]) {
      const r = await olga.post("/projects", { name, configUrl: "https://git.example.org/c.git", configRef: "main", architecture: "amd64", suite: "trixie", priority: "0", scheduleKind: "none", scheduleTz: "UTC" });
      expect(r.status).toBe(400);
      const sentence = /<p class="field-error"[^>]*>([^<]*)</.exec(r.text)?.[1] ?? /id="name-error"[^>]*>([^<]*)</.exec(r.text)?.[1] ?? "";
      answers.push(sentence.replace(name, "NAME"));
      expect(r.text).toContain(`The name ${name} is not available; choose another.`);
    }
    expect(answers[0]).toBe(answers[1]);
    expect(answers[0]).not.toBe("");
  });
});
