// The build page in Chromium, as a new user sees it: every fact beside the log follows the
// build without a reload, the log box opens at its end, follows while the reader is at the
// bottom, stops when they scroll up and offers "Jump to end", colours show as colours; without
// JavaScript the running build's page reloads itself. The real lexbuilder-webapp process and
// PostgreSQL; the test moves the build through its states as the master would.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addArtifact,
  addBuilder,
  appendLog,
  createProject,
  createUser,
  requestBuild,
  updateBuilderInfo,
  type Build,
} from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { createTestDatabase, driveBuild, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { tempDir } from "./fullstack-helpers.js";
import { chromium } from "playwright-core";
import { browserSkipReason, CHROMIUM, launchBrowser, screenshot, startWebapp, type BrowserSession, type WebappProcess } from "./support/browser.js";

const skip = browserSkipReason();
const PASSWORD = "a reader's long password";
const E = "\x1b";
let db: TestDatabase;
let webapp: WebappProcess;
let browser: BrowserSession;
const artifacts = tempDir("build-page-artifacts");
let projectId: number;
let builderId: number;
let logSize = 0;

async function append(buildId: number, text: string): Promise<void> {
  const bytes = Buffer.from(text);
  await appendLog(db.pool, buildId, logSize, bytes);
  logSize += bytes.length;
}

function lines(from: number, n: number): string {
  let out = "";
  for (let i = from; i < from + n; i++) out += i % 10 === 0 ? `${E}[31mE: line ${i} in red${E}[0m\n` : `I: line ${i}\n`;
  return out;
}

describe.skipIf(skip !== null)("the build page in Chromium", () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    await createUser(db.pool, { name: "lead", role: "admin", passwordHash: await hashPassword(PASSWORD) });
    projectId = (await createProject(db.pool, { name: "live", configUrl: "https://git.example.org/live.git", architecture: "amd64" })).id;
    builderId = (await addBuilder(db.pool, { name: "amd", url: "http://127.0.0.1:9/", token: "t".repeat(32) })).id;
    // Ready for amd64, so the writer functions can hand it a build as the master would.
    await updateBuilderInfo(db.pool, builderId, { architectures: ["amd64"], info: {}, ready: true });
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: artifacts });
    browser = await launchBrowser();
    const page = browser.page;
    await page.goto(`${webapp.url}/login`);
    await page.fill("#name", "lead");
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(`${webapp.url}/`), page.click("button[type=submit]")]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await webapp?.stop();
    await db?.drop();
  });

  it("follows the build live: facts, files, buttons, and a log box that follows its end", async () => {
    const page = browser.page;
    const build: Build = await requestBuild(db.pool, { projectId, reason: "manual" });
    logSize = 0;
    await page.goto(`${webapp.url}/builds/${build.id}`);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    const fact = (name: string) => page.locator(`dl.facts dt:text-is("${name}") + dd`).textContent();
    expect(await fact("Builder")).toBe("—");
    expect(await fact("Dispatched")).toBe("—");
    expect(await page.locator("button", { hasText: "Cancel build" }).count()).toBe(1);

    // Dispatched to a builder, then started: the facts change in place.
    await driveBuild(db.pool, build.id, "DISPATCHING", { builderId });
    await expect.poll(() => fact("Builder"), { timeout: 10_000 }).toBe("amd");
    expect(await fact("Dispatched")).not.toBe("—");
    expect(await page.textContent("#build-state")).toBe("DISPATCHING");
    await driveBuild(db.pool, build.id, "BUILDING");
    await expect.poll(() => page.textContent("#build-state"), { timeout: 10_000 }).toBe("BUILDING");
    expect(await fact("Started")).not.toBe("—");
    expect(await fact("Took")).toBe("still running");
    expect(await page.title()).toBe(`Build #${build.id} of live — BUILDING · lexbuilder`);

    // Lines arrive and the box stays at its end; colours are spans, not escape codes.
    await append(build.id, lines(0, 300));
    await page.waitForFunction(() => (document.getElementById("log")?.textContent ?? "").includes("I: line 299"), null, { timeout: 10_000 });
    const geometry = () =>
      page.evaluate(() => {
        const log = document.getElementById("log")!;
        return { gap: log.scrollHeight - log.scrollTop - log.clientHeight, top: log.scrollTop, overflows: log.scrollHeight > log.clientHeight, jumpHidden: document.getElementById("log-jump")!.hidden };
      });
    await expect.poll(async () => (await geometry()).gap, { timeout: 5000 }).toBeLessThan(5);
    expect((await geometry()).overflows).toBe(true);
    expect((await geometry()).jumpHidden).toBe(true);
    expect(await page.locator("#log span.ansi-red").first().textContent()).toBe("E: line 0 in red");
    expect(await page.textContent("#log")).not.toContain("\u001b");
    expect(await page.textContent("#log-size")).toBe(`${(logSize / 1024).toFixed(1)} KiB`);

    // The reader scrolls up: new lines no longer move the box, and "Jump to end" appears.
    await page.evaluate(() => {
      const log = document.getElementById("log")!;
      log.scrollTop = 100;
      log.dispatchEvent(new Event("scroll"));
    });
    expect((await geometry()).jumpHidden).toBe(false);
    await append(build.id, lines(300, 100));
    await page.waitForFunction(() => (document.getElementById("log")?.textContent ?? "").includes("I: line 399"), null, { timeout: 10_000 });
    expect((await geometry()).top).toBe(100);
    await screenshot(page, "build-page-paused");
    // Jump to end: at the end again, and following again.
    await page.click("#log-jump");
    await expect.poll(async () => (await geometry()).gap).toBeLessThan(5);
    expect((await geometry()).jumpHidden).toBe(true);
    await append(build.id, lines(400, 100));
    await page.waitForFunction(() => (document.getElementById("log")?.textContent ?? "").includes("I: line 499"), null, { timeout: 10_000 });
    await expect.poll(async () => (await geometry()).gap).toBeLessThan(5);

    // Collected and finished: files, manifest state, result and buttons change without a reload.
    await driveBuild(db.pool, build.id, "COLLECTING", { configRevision: "0123456789abcdef0123456789abcdef01234567" });
    const image = Buffer.from("an image");
    mkdirSync(join(artifacts, "live", String(build.id)), { recursive: true });
    writeFileSync(join(artifacts, "live", String(build.id), "live-image-amd64.iso"), image);
    await addArtifact(db.pool, { buildId: build.id, name: "live-image-amd64.iso", kind: "image", sha256: createHash("sha256").update(image).digest("hex"), size: image.length, storedPath: `live/${build.id}/live-image-amd64.iso` });
    await driveBuild(db.pool, build.id, "SUCCEEDED", { artifactDir: `live/${build.id}` });
    await expect.poll(() => page.textContent("#build-state"), { timeout: 10_000 }).toBe("SUCCEEDED");
    await page.waitForSelector("td.sha");
    expect(await page.textContent("td.sha")).toBe(createHash("sha256").update(image).digest("hex"));
    expect(await fact("Finished")).not.toBe("—");
    expect(await fact("Took")).not.toBe("—");
    expect(await page.locator("button", { hasText: "Cancel build" }).count()).toBe(0);
    expect(await page.textContent("#log-status")).toBe("the build has finished");
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7); // never reloaded
    await screenshot(page, "build-page-finished-live");

    // A finished build's page opens with its log at the end.
    await page.reload();
    await expect.poll(async () => (await geometry()).gap).toBeLessThan(5);
    expect((await geometry()).top).toBeGreaterThan(0);
  });

  it("without JavaScript, a running build's page reloads itself until the build has finished", async () => {
    const other = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
    try {
      const context = await other.newContext({ javaScriptEnabled: false });
      await context.addCookies(await browser.context.cookies());
      const page = await context.newPage();
      const build = await requestBuild(db.pool, { projectId, reason: "manual", configRef: "nojs" });
      await page.goto(`${webapp.url}/builds/${build.id}`);
      expect(await page.textContent("#build-state")).toBe("QUEUED");
      await driveBuild(db.pool, build.id, "CANCELLED");
      await expect.poll(() => page.textContent("#build-state"), { timeout: 20_000, intervals: [500] }).toBe("CANCELLED");
      expect(await page.content()).not.toContain('http-equiv="refresh"');
    } finally {
      await other.close();
    }
  }, 60_000);

  it("the schedule form: typing a time chooses 'Every day at'", async () => {
    const page = browser.page;
    await page.goto(`${webapp.url}/projects/live/edit`);
    expect(await page.isChecked("input[name=scheduleKind][value=none]")).toBe(true);
    await page.fill("#scheduleDailyAt", "06:45");
    expect(await page.isChecked("input[name=scheduleKind][value=daily]")).toBe(true);
    await page.fill("#scheduleTz", "UTC");
    await Promise.all([page.waitForURL(`${webapp.url}/projects/live`), page.click("button[type=submit]")]);
    expect(await page.textContent("#schedule-text")).toContain("every day at 06:45");
  });
});
