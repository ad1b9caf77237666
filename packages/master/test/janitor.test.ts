// Retention: keep_last / keep_days prune images and logs of finished builds, files and rows
// together, and never a milestone build, a project's latest success, or an unfinished build.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendLog, createProject } from "@lexbuilder/shared-models/db";
import { createTestDatabase, type TestDatabase } from "@lexbuilder/shared-models/testing";
import { Janitor } from "../src/janitor.js";
import { testContext } from "./support.js";

let db: TestDatabase;
const artifacts = mkdtempSync(join(tmpdir(), "lexbuilder-janitor-"));
const NOW = new Date("2026-06-01T12:00:00Z");

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** A build in `state` with one file on disk and a log, finished `daysAgo` days before NOW. */
async function build(projectId: number, projectName: string, state: string, daysAgo: number, milestone: string | null = null): Promise<number> {
  const finished = new Date(NOW.getTime() - daysAgo * 86_400_000);
  const { rows } = await db.pool.query<{ id: number }>(
    `INSERT INTO builds (project_id, state, failure_kind, reason, milestone, config_ref, architecture, requested_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, 'main', 'amd64', $6, $7) RETURNING id`,
    [projectId, state, state === "FAILED" ? "build" : null, milestone ? "milestone" : "manual", milestone, finished, state === "QUEUED" ? null : finished],
  );
  const id = rows[0]!.id;
  const dir = `${projectName}/20260101/${id}`;
  mkdirSync(join(artifacts, dir), { recursive: true });
  writeFileSync(join(artifacts, dir, "image.tar.gz"), `image of ${id}`);
  await db.pool.query(
    `INSERT INTO artifacts (build_id, name, kind, sha256, size, stored_path) VALUES ($1, 'image.tar.gz', 'image', $2, 10, $3)`,
    [id, "0".repeat(64), `${dir}/image.tar.gz`],
  );
  if (state !== "QUEUED") await db.pool.query("UPDATE builds SET artifact_dir = $2 WHERE id = $1", [id, dir]);
  await appendLog(db.pool, id, 0, Buffer.from(`log of ${id}\n`));
  return id;
}

async function kept(id: number): Promise<boolean> {
  const { rows } = await db.pool.query(
    `SELECT (SELECT count(*)::int FROM artifacts WHERE build_id = $1) AS a,
            (SELECT count(*)::int FROM build_log_chunks WHERE build_id = $1) AS l,
            (SELECT artifact_dir FROM builds WHERE id = $1) AS dir,
            (SELECT name FROM projects p JOIN builds b ON b.project_id = p.id WHERE b.id = $1) AS project`,
    [id],
  );
  const r = rows[0];
  const onDisk = existsSync(join(artifacts, `${r.project}/20260101/${id}/image.tar.gz`));
  // Files and rows go together.
  expect(onDisk).toBe(r.a === 1);
  expect(r.l === 1).toBe(r.a === 1);
  return r.a === 1;
}

describe("the retention janitor", () => {
  it("keeps the last N finished builds, milestones and the latest success", async () => {
    const p = await createProject(db.pool, { name: "keeplast", configUrl: "https://example.org/c.git", architecture: "amd64", keepLast: 2 });
    const b1 = await build(p.id, p.name, "SUCCEEDED", 60, "1.0");
    const b2 = await build(p.id, p.name, "SUCCEEDED", 50);
    const b3 = await build(p.id, p.name, "FAILED", 40);
    const b4 = await build(p.id, p.name, "SUCCEEDED", 30);
    const b5 = await build(p.id, p.name, "FAILED", 20);
    const b6 = await build(p.id, p.name, "CANCELLED", 10);
    const q = await build(p.id, p.name, "QUEUED", 0);
    const forever = await createProject(db.pool, { name: "forever", configUrl: "https://example.org/c.git", architecture: "amd64" });
    const f1 = await build(forever.id, forever.name, "FAILED", 400);

    const janitor = new Janitor(testContext(db.pool, db.url, { LEXBUILDER_ARTIFACTS_DIR: artifacts }), () => NOW);
    const pruned = await janitor.run();
    expect(pruned).toBe(2);
    expect(await kept(b1)).toBe(true); // milestone
    expect(await kept(b2)).toBe(false);
    expect(await kept(b3)).toBe(false);
    expect(await kept(b4)).toBe(true); // latest success
    expect(await kept(b5)).toBe(true); // last two
    expect(await kept(b6)).toBe(true);
    expect(await kept(q)).toBe(true); // not finished
    expect(await kept(f1)).toBe(true); // no retention set
    // The build rows stay (history, manifests); a second pass has nothing to do.
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM builds WHERE project_id = $1", [p.id]);
    expect(rows[0].n).toBe(7);
    expect(await janitor.run()).toBe(0);
  });

  it("keeps builds younger than keep_days, and with both limits keeps what either covers", async () => {
    const p = await createProject(db.pool, { name: "keepdays", configUrl: "https://example.org/c.git", architecture: "amd64", keepDays: 7 });
    const old = await build(p.id, p.name, "FAILED", 30);
    const oldSuccess = await build(p.id, p.name, "SUCCEEDED", 20);
    const recent = await build(p.id, p.name, "FAILED", 2);
    const both = await createProject(db.pool, { name: "keepboth", configUrl: "https://example.org/c.git", architecture: "amd64", keepDays: 7, keepLast: 1 });
    const x1 = await build(both.id, both.name, "FAILED", 30);
    const x2 = await build(both.id, both.name, "FAILED", 3);
    const x3 = await build(both.id, both.name, "FAILED", 1);
    const janitor = new Janitor(testContext(db.pool, db.url, { LEXBUILDER_ARTIFACTS_DIR: artifacts }), () => NOW);
    await janitor.run();
    expect(await kept(old)).toBe(false);
    expect(await kept(oldSuccess)).toBe(true); // the latest success, however old
    expect(await kept(recent)).toBe(true);
    expect(await kept(x1)).toBe(false);
    expect(await kept(x2)).toBe(true); // within 7 days
    expect(await kept(x3)).toBe(true);
  });
});
