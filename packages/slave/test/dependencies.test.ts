// The slave runs on build machines that have no database: it must not load the PostgreSQL
// client or the scheduler, which only the master and the webapp use. Shown by running the real
// daemon with a loader hook that records every module it resolves, until it answers on its port.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "@lexbuilder/shared-models/embedded-postgres";
import { waitUntil } from "@lexbuilder/shared-models/testing";

const dir = mkdtempSync(join(tmpdir(), "lexbuilder-slave-deps-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the slave daemon's dependencies", () => {
  it("loads neither pg nor node-cron", async () => {
    const record = join(dir, "resolved.txt");
    writeFileSync(record, "");
    const port = await freePort();
    const bin = join(import.meta.dirname, "..", "bin", "lexbuilder-slave.js");
    const preload = join(import.meta.dirname, "fixtures", "record-resolutions.mjs");
    const proc = spawn(process.execPath, ["--import", preload, bin], {
      env: {
        ...process.env,
        RECORD_RESOLUTIONS_TO: record,
        LEXBUILDER_SLAVE_LISTEN: `127.0.0.1:${port}`,
        LEXBUILDER_SLAVE_STATE_DIR: join(dir, "state"),
        LEXBUILDER_SLAVE_TOKEN_FILE: join(dir, "token"),
        LEXBUILDER_SLAVE_ISOLATION: "none",
        LOG_LEVEL: "warn",
      },
      stdio: "ignore",
    });
    try {
      // Listening means every module of the daemon's start-up has been loaded.
      await waitUntil("the slave to answer /healthz", async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null)) !== null, { timeoutMs: 30_000 });
    } finally {
      proc.kill("SIGTERM");
    }
    const urls = readFileSync(record, "utf8").split("\n").filter(Boolean);
    // The hook saw the daemon's own modules and its real dependencies, so an empty list cannot pass.
    expect(urls.some((u) => u.includes("/packages/slave/dist/server.js"))).toBe(true);
    expect(urls.some((u) => /\/node_modules\/(pino|simple-git)\//.test(u))).toBe(true);
    expect(urls.filter((u) => /\/node_modules\/(pg|pg-[a-z-]+|node-cron)\//.test(u))).toEqual([]);
  });
});
