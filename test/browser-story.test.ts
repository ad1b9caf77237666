// The user story in a real browser against the real stack: lexbuilder-webapp, lexbuilder-master
// and a lexbuilder-slave (with the fake lb) as processes, PostgreSQL, a real git repository.
// A project lead logs in, adds the builder, creates a project from a config branch, clicks
// Build, watches the log arrive live, downloads the image and checks its sha256, opens the
// manifest, sets a daily time and sees the next run, builds again (for another architecture)
// and compares the two manifests. Screenshots of the main pages go to test-output/screenshots/.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { addCommit, fakeConf, makeConfigRepo, startSlave, type ConfigRepo, type Slave } from "../packages/slave/test/helpers.js";
import { admin, sha256File, startMaster, tempDir, waitUntil, type MasterProcess } from "./fullstack-helpers.js";
import { browserSkipReason, launchBrowser, screenshot, startWebapp, type BrowserSession, type WebappProcess } from "./support/browser.js";

const skip = browserSkipReason();
if (skip) process.stdout.write(`browser-story: ${skip}\n`);

const PASSWORD = "a project lead's password";
let db: TestDatabase;
let repo: ConfigRepo;
let slave: Slave;
let master: MasterProcess;
let webapp: WebappProcess;
let browser: BrowserSession;
const artifacts = tempDir("browser-artifacts");

describe.skipIf(skip !== null)("the user story in Chromium", () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    repo = makeConfigRepo({ main: fakeConf(["sleep=6"]) });
    slave = await startSlave({ env: { LEXBUILDER_SLAVE_ARCHITECTURES: "amd64,arm64" } });
    const pwFile = join(tempDir("pw"), "pw");
    writeFileSync(pwFile, PASSWORD + "\n", { mode: 0o600 });
    const created = await admin(db.url, ["create-user", "lead", "--role", "admin", "--password-file", pwFile]);
    expect(created.stderr).toBe("");
    master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts });
    await master.started;
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: artifacts, env: { LEXBUILDER_ALLOWED_CONFIG_SCHEMES: "https,file" } });
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await webapp?.stop();
    await master?.stop();
    await slave?.stop();
    await db?.drop();
  });

  it("logs in, adds a builder, builds, follows the log, downloads, compares manifests and schedules", async () => {
    const page = browser.page;
    const base = webapp.url;

    // Log in (anonymous users are sent to the login page).
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await screenshot(page, "01-login");
    await page.fill("#name", "lead");
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
    expect(await page.title()).toBe("Dashboard · lexbuilder");

    // Add the builder; the console checks it at once.
    await page.goto(`${base}/builders/new`);
    await page.fill("#name", "amd");
    await page.fill("#url", slave.url);
    await page.fill("#token", slave.token);
    await Promise.all([page.waitForURL(`${base}/builders`), page.click("button[type=submit]")]);
    await expect.poll(() => page.textContent(".flash-ok")).toContain("Builder amd added. Connected to");
    await waitUntil("the master to see the builder idle", async () => {
      const { rows } = await db.pool.query("SELECT 1 FROM builders WHERE name = 'amd' AND state = 'IDLE' AND ready");
      return rows.length === 1;
    });
    await page.reload();
    await screenshot(page, "02-builders");

    // Create a project from the sample config branch; a wrong field first.
    await page.goto(`${base}/projects/new`);
    await page.fill("#name", "Demo Image");
    await page.fill("#title", "Demo image");
    await page.fill("#configUrl", repo.url);
    await page.fill("#configRef", "main");
    await page.fill("#architecture", "amd64");
    await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    expect(await page.textContent("#name-error")).toMatch(/./);
    expect(await page.inputValue("#configUrl")).toBe(repo.url);
    await screenshot(page, "03-project-form-error");
    await page.fill("#name", "demo");
    await Promise.all([page.waitForURL(`${base}/projects/demo`), page.click("button[type=submit]")]);

    // Build now; watch lines arrive while the build runs, without reloading the page.
    await Promise.all([page.waitForURL(/\/builds\/\d+$/), page.click("#build-now")]);
    const firstBuild = Number(new URL(page.url()).pathname.split("/").pop());
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await page
      .waitForFunction(() => /I: Progress [23]\//.test(document.getElementById("log")?.textContent ?? ""), null, { timeout: 60_000 })
      .catch(async (err) => {
        await screenshot(page, "failure");
        const { rows } = await db.pool.query("SELECT state, log_size, failure_message FROM builds WHERE id = $1", [firstBuild]);
        throw new Error(
          `${(err as Error).message}\nbuild: ${JSON.stringify(rows[0])}\nstatus: ${await page.textContent("#log-status")}\nlog: ${await page.textContent("#log")}\nwebapp: ${webapp.output().slice(-3000)}`,
        );
      });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42); // same page: streamed, not reloaded
    expect(await page.textContent("#build-state")).toBe("BUILDING");
    await screenshot(page, "04-build-live-log");
    const seen = await page.textContent("#log");
    await page.waitForFunction((before) => (document.getElementById("log")?.textContent ?? "").length > before, seen!.length, { timeout: 10_000 });

    // It succeeds; the files appear on the same page, without a reload.
    await page.waitForFunction(() => document.getElementById("build-state")?.textContent === "SUCCEEDED" && document.querySelector("#files + .table-wrap, .sha"), null, { timeout: 90_000 });
    await page.waitForSelector("td.sha");
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(await page.textContent("#log")).toContain("P: Build completed successfully");
    await screenshot(page, "05-build-succeeded");

    // Download the image and check its sha256 against the page and the stored file.
    const row = page.locator("tr", { has: page.locator("a", { hasText: "live-image-amd64.tar.tar.gz" }) });
    const shownSha = (await row.locator("td.sha").textContent())!.trim();
    const [download] = await Promise.all([page.waitForEvent("download"), row.locator("a").click()]);
    const saved = join(tempDir("download"), "image.tar.gz");
    await download.saveAs(saved);
    const sha = createHash("sha256").update(readFileSync(saved)).digest("hex");
    expect(sha).toBe(shownSha);
    const { rows: stored } = await db.pool.query<{ stored_path: string; sha256: string }>(
      "SELECT stored_path, sha256 FROM artifacts WHERE build_id = $1 AND kind = 'image'",
      [firstBuild],
    );
    expect(sha256File(join(artifacts, stored[0]!.stored_path))).toBe(sha);
    expect(stored[0]!.sha256).toBe(sha);

    // The manifest.
    await Promise.all([page.waitForURL(`${base}/builds/${firstBuild}/manifest`), page.click(`a[href="/builds/${firstBuild}/manifest"]`)]);
    const manifestText = await page.textContent("table");
    expect(manifestText).toContain("libc6");
    expect(manifestText).toContain("base-files");
    await screenshot(page, "06-manifest");

    // Edit the project: another architecture and a daily time; see the next run.
    await page.goto(`${base}/projects/demo/edit`);
    await page.fill("#architecture", "arm64");
    await page.check("input[name=scheduleKind][value=daily]");
    await page.fill("#scheduleDailyAt", "05:30");
    await page.fill("#scheduleTz", "UTC");
    await Promise.all([page.waitForURL(`${base}/projects/demo`), page.click("button[type=submit]")]);
    expect(await page.textContent("#schedule-text")).toContain("every day at 05:30");
    const nextIso = await page.getAttribute("#next-run time", "datetime");
    const next = new Date(nextIso!);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3600 * 1000);
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([5, 30]);
    expect(await page.getAttribute("#next-run time", "title")).toMatch(/05:30:00 UTC$/);
    await screenshot(page, "07-project-schedule");

    // The branch changes as a real one does: a package list asks for htop. A second build
    // (arm64) picks it up; compare its manifest with the first.
    addCommit(repo, "main", { "config/package-lists/tools.list.chroot": "# wanted on every image\nhtop\n" });
    await Promise.all([page.waitForURL(/\/builds\/\d+$/), page.click("#build-now")]);
    const secondBuild = Number(new URL(page.url()).pathname.split("/").pop());
    expect(secondBuild).toBeGreaterThan(firstBuild);
    await page.waitForFunction(() => document.getElementById("build-state")?.textContent === "SUCCEEDED" && document.querySelector("td.sha"), null, { timeout: 90_000 });
    await page.selectOption("select[name=from]", String(firstBuild));
    await Promise.all([page.waitForURL(/\/diff\?/), page.click("text=Show changes")]);
    // The package list's htop is the one difference.
    const diffText = (await page.textContent("main"))!.replace(/\s+/g, " ");
    expect(diffText).toContain(`From #${firstBuild} (demo) to #${secondBuild} (demo): 1 added, 0 removed, 0 changed.`);
    expect(diffText).not.toContain("The two manifests list the same packages at the same versions.");
    expect(await page.locator("#diff-added tbody tr").count()).toBe(1);
    expect((await page.locator("#diff-added tbody td").allTextContents()).map((t) => t.trim())).toEqual(["htop", "1.0-1"]);
    await screenshot(page, "08-diff");

    // The other main pages, for the record (and a phone-sized one).
    for (const [path, name] of [
      ["/", "09-dashboard"],
      ["/projects", "10-projects"],
      ["/builds", "11-builds"],
      ["/packages?name=bash", "12-package-search"],
      ["/users", "13-users"],
      ["/account", "14-account"],
      ["/projects/nope", "15-not-found"],
    ] as const) {
      await page.goto(base + path);
      await screenshot(page, name);
    }
    expect(await page.title()).toBe("Not found · lexbuilder");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/builds/${firstBuild}`);
    await screenshot(page, "16-build-phone");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(1);
  }, 300_000);
});
