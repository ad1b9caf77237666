// Browser-test support: Debian's Chromium driven by playwright-core (headless, a fresh
// profile, no background traffic), the real lexbuilder-webapp as a child process, screenshots
// under test-output/screenshots/.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "..", "..");
export const WEBAPP_BIN = join(ROOT, "packages", "webapp", "bin", "lexbuilder-webapp.js");
export const SCREENSHOT_DIR = join(ROOT, "test-output", "screenshots");
export const CHROMIUM = process.env.LEXBUILDER_CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or null. In CI they must run: never skipped there. */
export function browserSkipReason(): string | null {
  if (existsSync(CHROMIUM)) return null;
  if (process.env.CI) return null; // let launch fail loudly
  return `${CHROMIUM} is not installed (apt-get install chromium); skipping the browser tests outside CI.`;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<BrowserSession> {
  const profile = mkdtempSync(join(tmpdir(), "lexbuilder-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export interface WebappProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** The real command (dist/), on a free loopback port. */
export async function startWebapp(opts: { databaseUrl: string; artifactsDir: string; env?: Record<string, string> }): Promise<WebappProcess> {
  const port = await freePort();
  const secretDir = mkdtempSync(join(tmpdir(), "lexbuilder-webapp-secret-"));
  const proc = spawn(process.execPath, [WEBAPP_BIN], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      DATABASE_URL: opts.databaseUrl,
      LEXBUILDER_ARTIFACTS_DIR: opts.artifactsDir,
      LEXBUILDER_WEBAPP_LISTEN: `127.0.0.1:${port}`,
      LEXBUILDER_WEBAPP_SECRET_FILE: join(secretDir, "secret"),
      LOG_LEVEL: "info",
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(proc);
  let out = "";
  proc.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.on("exit", (code) => {
      children.delete(proc);
      rmSync(secretDir, { recursive: true, force: true });
      resolve(code);
    }),
  );
  // Ready when it answers (whatever LOG_LEVEL says).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`lexbuilder-webapp did not start:\n${out}`);
    const ok = await fetch(`http://127.0.0.1:${port}/login`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    output: () => out,
    stop: async () => {
      proc.kill("SIGTERM");
      return exited;
    },
  };
}
