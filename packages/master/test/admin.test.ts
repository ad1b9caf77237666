// lexbuilder-admin as a process against a real database: every command, --help everywhere,
// --json on reads, errors as one sentence with a non-zero exit.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { findUserByApiToken, getUserByName, getPasswordHash } from "@lexbuilder/shared-models/db";
import { verifyPassword } from "@lexbuilder/shared-models/passwords";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { admin, tempDir } from "../../../test/fullstack-helpers.js";

// Each command is a fresh node process; on a loaded 2-core machine they take a second or two.
vi.setConfig({ testTimeout: 180_000 });

let db: TestDatabase;
const COMMANDS = [
  "migrate", "create-user", "create-token", "add-builder", "list-builders", "enable-builder",
  "disable-builder", "add-project", "request-build", "show-build", "list-builds",
];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function file(content: string): string {
  const f = join(tempDir("admin"), "secret");
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

describe("lexbuilder-admin", () => {
  it("has --help for itself and every command", async () => {
    const top = await admin(db.url, ["--help"]);
    expect(top.code).toBe(0);
    for (const c of COMMANDS) {
      expect(top.stdout).toContain(c);
      const r = await admin(db.url, [c, "--help"]);
      expect(r.code, c).toBe(0);
      expect(r.stdout).toContain(`Usage: lexbuilder-admin ${c}`);
    }
    const unknown = await admin(db.url, ["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('lexbuilder-admin: there is no command "frobnicate"; run lexbuilder-admin --help for the list.\n');
  });

  it("migrates, and says so when there is nothing to do", async () => {
    const r = await admin(db.url, ["migrate"]);
    expect(r).toMatchObject({ code: 0, stdout: "The database schema is up to date.\n" });
    const noDb = await admin("postgres://nobody@127.0.0.1:1/none", ["migrate"]);
    expect(noDb.code).toBe(1);
    expect(noDb.stderr).toMatch(/^lexbuilder-admin: cannot use the database .*; check DATABASE_URL\.\n$/);
  });

  it("creates users with a given or a generated password, and API tokens", async () => {
    const given = await admin(db.url, ["create-user", "alice", "--role", "admin", "--password-file", file("correct horse battery\n")]);
    expect(given).toMatchObject({ code: 0, stdout: "Created user alice (admin).\n" });
    const alice = (await getUserByName(db.pool, "alice"))!;
    expect(await verifyPassword("correct horse battery", (await getPasswordHash(db.pool, alice.id))!)).toBe(true);

    const gen = await admin(db.url, ["create-user", "bob", "--role", "viewer"]);
    expect(gen.code).toBe(0);
    const password = /with password: (\S+)\n$/.exec(gen.stdout)![1]!;
    const bob = (await getUserByName(db.pool, "bob"))!;
    expect(await verifyPassword(password, (await getPasswordHash(db.pool, bob.id))!)).toBe(true);

    const dup = await admin(db.url, ["create-user", "bob", "--role", "viewer"]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe("lexbuilder-admin: A user named bob already exists; choose another name.\n");
    const role = await admin(db.url, ["create-user", "carol", "--role", "king"]);
    expect(role.code).toBe(1);
    expect(role.stderr).toMatch(/^lexbuilder-admin: Choose a role/);
    const noRole = await admin(db.url, ["create-user", "carol"]);
    expect(noRole.code).toBe(2);

    const tok = await admin(db.url, ["create-token", "alice"]);
    expect(tok.code).toBe(0);
    const token = tok.stdout.trim();
    expect((await findUserByApiToken(db.pool, token))?.name).toBe("alice");
    const none = await admin(db.url, ["create-token", "zed"]);
    expect(none.stderr).toBe("lexbuilder-admin: There is no user named zed.\n");
  });

  it("adds, lists, disables and enables builders", async () => {
    const add = await admin(db.url, ["add-builder", "b1", "http://127.0.0.1:8221", "--token-file", file("s3cret-token\n")]);
    expect(add.code).toBe(0);
    const badUrl = await admin(db.url, ["add-builder", "b2", "ftp://x", "--token-file", file("t\n")]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toBe("lexbuilder-admin: The builder URL must start with http:// or https://.\n");
    const noFile = await admin(db.url, ["add-builder", "b3", "http://127.0.0.1:1", "--token-file", "/nonexistent/token"]);
    expect(noFile.stderr).toBe("lexbuilder-admin: Cannot read the token file /nonexistent/token (ENOENT).\n");

    const noReason = await admin(db.url, ["disable-builder", "b1", "--reason", " "]);
    expect(noReason).toMatchObject({ code: 1, stderr: "lexbuilder-admin: Give a reason of 1 to 500 characters, on one line.\n" });
    const dis = await admin(db.url, ["disable-builder", "b1", "--reason", "disk replaced"]);
    expect(dis.code).toBe(0);
    let list = JSON.parse((await admin(db.url, ["list-builders", "--json"])).stdout);
    expect(list).toEqual([expect.objectContaining({ name: "b1", enabled: false, disabledReason: "disk replaced", state: "UNKNOWN" })]);
    expect(JSON.stringify(list)).not.toContain("s3cret-token");
    expect((await admin(db.url, ["enable-builder", "b1"])).code).toBe(0);
    list = JSON.parse((await admin(db.url, ["list-builders", "--json"])).stdout);
    expect(list[0]).toMatchObject({ enabled: true, disabledReason: null });
    const text = await admin(db.url, ["list-builders"]);
    expect(text.stdout).toMatch(/^NAME\s+STATE/);
    expect((await admin(db.url, ["enable-builder", "nope"])).stderr).toBe("lexbuilder-admin: There is no builder named nope.\n");
  });

  it("adds projects (with a daily time), requests, shows and lists builds", async () => {
    const add = await admin(db.url, ["add-project", "demo", "--config-url", "file:///srv/config.git", "--arch", "amd64", "--daily", "02:30"]);
    expect(add).toMatchObject({ code: 0 });
    expect(add.stdout).toContain("built daily at 02:30 UTC");
    const bad = await admin(db.url, ["add-project", "demo2", "--config-url", "file:///x", "--arch", "AMD 64"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    const noFile = await admin(db.url, ["add-project", "demo3", "--config-url", "file:///x", "--arch", "amd64"], { LEXBUILDER_ALLOWED_CONFIG_SCHEMES: "https" });
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toBe("lexbuilder-admin: The scheme file:// is not allowed for configuration URLs; use one of: https.\n");
    const badList = await admin(db.url, ["add-project", "demo3", "--config-url", "file:///x", "--arch", "amd64"], { LEXBUILDER_ALLOWED_CONFIG_SCHEMES: "https,ext" });
    expect(badList).toMatchObject({ code: 1, stderr: 'lexbuilder-admin: LEXBUILDER_ALLOWED_CONFIG_SCHEMES may only name https, http, git, ssh, file, not "ext".\n' });

    const cronProject = await admin(db.url, [
      "add-project", "nightly", "--config-url", "file:///srv/config.git", "--arch", "amd64", "--cron", "15 3 * * 1-5",
      "--tz", "Europe/Berlin", "--priority", "50", "--keep-last", "10", "--keep-days", "30", "--title", "Nightly image",
    ]);
    expect(cronProject).toMatchObject({ code: 0 });
    expect(cronProject.stdout).toContain('built on "15 3 * * 1-5" Europe/Berlin');
    const { rows: [nightly] } = await db.pool.query("SELECT title, priority, keep_last, keep_days, schedule_tz FROM projects WHERE name = 'nightly'");
    expect(nightly).toEqual({ title: "Nightly image", priority: 50, keep_last: 10, keep_days: 30, schedule_tz: "Europe/Berlin" });
    const badTz = await admin(db.url, ["add-project", "tz", "--config-url", "file:///x", "--arch", "amd64", "--daily", "01:00", "--tz", "Mars/Olympus"]);
    expect(badTz.code).toBe(1);
    expect(badTz.stderr).toMatch(/time zone/);
    const both = await admin(db.url, ["add-project", "both", "--config-url", "file:///x", "--arch", "amd64", "--daily", "01:00", "--cron", "0 1 * * *"]);
    expect(both.code).toBe(1);

    const r1 = await admin(db.url, ["request-build", "demo"]);
    expect(r1.stdout).toMatch(/^[0-9]+\n$/);
    const again = await admin(db.url, ["request-build", "demo"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^lexbuilder-admin: An identical build of demo is already queued \(#[0-9]+\)\.\n$/);
    const ms = await admin(db.url, ["request-build", "demo", "--milestone", "1.0", "--ref", "v1.0"]);
    const msId = Number(ms.stdout.trim());
    const shown = JSON.parse((await admin(db.url, ["show-build", String(msId), "--json"])).stdout);
    expect(shown).toMatchObject({ id: msId, project: "demo", state: "QUEUED", milestone: "1.0", configRef: "v1.0", reason: "milestone", files: [] });
    const human = await admin(db.url, ["show-build", String(msId)]);
    expect(human.stdout).toMatch(new RegExp(`^Build #${msId} of demo: QUEUED`));
    const missing = await admin(db.url, ["show-build", "999999"]);
    expect(missing.stderr).toBe("lexbuilder-admin: There is no build #999999.\n");
    const notId = await admin(db.url, ["show-build", "latest"]);
    expect(notId).toMatchObject({ code: 1, stderr: 'lexbuilder-admin: "latest" is not a build id; give a number such as 42.\n' });

    const listed = JSON.parse((await admin(db.url, ["list-builds", "--project", "demo", "--state", "queued", "--json"])).stdout);
    expect(listed.map((b: { id: number }) => b.id)).toEqual([msId, Number(r1.stdout.trim())]);
    const badState = await admin(db.url, ["list-builds", "--state", "DONE"]);
    expect(badState.stderr).toMatch(/^lexbuilder-admin: "DONE" is not a build state/);
  });
});
