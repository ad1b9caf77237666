// The webhook pages in Chromium with the real webapp and master processes: a project owner adds
// a webhook through the form (a bad secret is refused with its sentence, nothing stored), sends
// a test event, sees its delivery in the log once the master's notifier delivered it to a real
// receiver, and redelivers it with the same delivery id.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProject, createUser } from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { startMaster, tempDir, waitUntil, type MasterProcess } from "./fullstack-helpers.js";
import { browserSkipReason, launchBrowser, screenshot, startWebapp, type BrowserSession, type WebappProcess } from "./support/browser.js";

const skip = browserSkipReason();
const PASSWORD = "an owner's long password";

describe.skipIf(skip !== null)("webhooks in Chromium", () => {
  let db: TestDatabase;
  let webapp: WebappProcess;
  let master: MasterProcess;
  let browser: BrowserSession;
  const got: { delivery: string; event: string }[] = [];
  const receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      got.push({ delivery: String(req.headers["x-lexbuilder-delivery"]), event: String(req.headers["x-lexbuilder-event"]) });
      res.writeHead(200).end("received");
    });
  });

  beforeAll(async () => {
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    db = await createTestDatabase();
    await createUser(db.pool, { name: "owner", role: "admin", passwordHash: await hashPassword(PASSWORD) });
    await createProject(db.pool, { name: "hooked", configUrl: "https://git.example.org/c.git", architecture: "amd64" });
    const artifacts = tempDir("hook-browser");
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: artifacts, env: { LEXBUILDER_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1" } });
    master = await startMaster({ databaseUrl: db.url, artifactsDir: artifacts, env: { LEXBUILDER_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1", LEXBUILDER_NOTIFY_POLL_MS: "200" } });
    await master.started;
    browser = await launchBrowser();
    const page = browser.page;
    await page.goto(`${webapp.url}/login`);
    await page.fill("#name", "owner");
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(`${webapp.url}/`), page.click("button[type=submit]")]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await master?.stop();
    await webapp?.stop();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await db?.drop();
  });

  it("adds a webhook, sends a test event, shows the delivery and redelivers it", async () => {
    const page = browser.page;
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    await page.goto(`${webapp.url}/projects/hooked`);
    await Promise.all([page.waitForURL(`${webapp.url}/projects/hooked/notifications`), page.click("#notifications-link")]);
    expect(await page.locator("#mail-off").textContent()).toContain("Mail is not configured on this farm");

    await page.fill("#hook-url", url);
    await page.fill("#hook-secret", "0123456789abcdef");
    await page.evaluate(() => document.querySelector<HTMLInputElement>("#hook-secret")!.removeAttribute("minlength"));
    await page.fill("#hook-secret", "too short");
    await page.click("#webhook-form button[type=submit]");
    expect(await page.locator(".field-error").first().textContent()).toContain("The secret must be at least 16 characters long");
    expect(await page.locator("#webhook-list").count()).toBe(0);
    expect(await page.inputValue("#hook-url")).toBe(url);

    await page.fill("#hook-secret", "0123456789abcdef-secret");
    await page.uncheck('input[name=events][value="build.succeeded"]');
    await Promise.all([page.waitForURL(`${webapp.url}/projects/hooked/notifications`), page.click("#webhook-form button[type=submit]")]);
    expect(await page.locator("#webhook-list tbody tr").count()).toBe(1);
    expect(await page.locator("#webhook-list tbody tr td").nth(1).textContent()).toBe("build.failed");
    expect(await page.content()).not.toContain("0123456789abcdef-secret");

    await page.click(`#webhook-list a:text-is("${url}")`);
    expect(await page.locator("#no-deliveries").count()).toBe(1);
    await page.click("#send-test");
    await waitUntil("the test event to arrive", async () => got.length === 1, 20_000);
    expect(got[0]!.event).toBe("webhook.test");
    await waitUntil("the delivery log to show it delivered", async () => {
      await page.reload();
      return (await page.locator("#deliveries tbody tr .state").first().textContent()) === "delivered";
    }, 20_000);
    const row = page.locator("#deliveries tbody tr").first();
    expect(await row.getAttribute("data-delivery")).toBe(got[0]!.delivery);
    expect(await row.textContent()).toContain("200");
    expect(await row.textContent()).toContain("received");
    await screenshot(page, "webhook-deliveries");

    await row.locator("button:text-is('Redeliver')").click();
    await waitUntil("the redelivery", async () => got.length === 2, 20_000);
    expect(got[1]!.delivery).toBe(got[0]!.delivery);
  });
});
