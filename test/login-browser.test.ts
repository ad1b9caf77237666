// The login in Chromium against the real lexbuilder-webapp process: the login page and a
// refused login store no session row, the form's token (bound to its cookie) lets the real
// browser log in, and only then one row exists.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser } from "@lexbuilder/shared-models/db";
import { hashPassword } from "@lexbuilder/shared-models/passwords";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { tempDir } from "./fullstack-helpers.js";
import { browserSkipReason, launchBrowser, screenshot, startWebapp, type BrowserSession, type WebappProcess } from "./support/browser.js";

const PASSWORD = "a browser's passphrase";
const skip = browserSkipReason();
let db: TestDatabase;
let webapp: WebappProcess;
let browser: BrowserSession;

describe.skipIf(skip !== null)("logging in with Chromium", () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    await createUser(db.pool, { name: "lena", role: "viewer", passwordHash: await hashPassword(PASSWORD) });
    webapp = await startWebapp({ databaseUrl: db.url, artifactsDir: tempDir("login-browser-artifacts") });
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await webapp?.stop();
    await db?.drop();
  });

  const sessionRows = async () => (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions")).rows[0]!.n;

  it("stores a session only once the login succeeds", async () => {
    const page = browser.page;
    await page.goto(`${webapp.url}/`);
    await page.waitForURL(/\/login\?next=/);
    await page.fill("#name", "lena");
    await page.fill("#password", "not the password");
    await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    await expect.poll(() => page.textContent("body")).toContain("do not match");
    expect(await sessionRows()).toBe(0);
    const cookies = await browser.context.cookies(webapp.url);
    expect(cookies.map((c) => c.name)).toEqual(["lexbuilder.form"]);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: "Lax" });

    await page.fill("#name", "lena");
    await page.fill("#password", PASSWORD);
    await Promise.all([page.waitForURL(`${webapp.url}/`), page.click("button[type=submit]")]);
    await screenshot(page, "login-browser-dashboard");
    expect(await sessionRows()).toBe(1);
    expect((await browser.context.cookies(webapp.url)).map((c) => c.name)).toEqual(["lexbuilder.sid"]);
  });
});
