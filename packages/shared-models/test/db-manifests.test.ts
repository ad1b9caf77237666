import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../testing/index.js";
import { createProject, type Project } from "../src/db/projects.js";
import { requestBuild } from "../src/db/builds.js";
import { failBuild } from "../src/db/build-transitions.js";
import { createUser } from "../src/db/users.js";
import { diffManifests, getManifest, insertManifest, parseManifest, searchPackages } from "../src/db/manifests.js";
import { addArtifact, deleteArtifactsOfBuild, getArtifact, listArtifacts } from "../src/db/artifacts.js";
import { getBuild } from "../src/db/builds.js";

let db: TestDatabase;
let n = 0;
async function project(extra: { private?: boolean } = {}): Promise<Project> {
  n++;
  return createProject(db.pool, { name: `m${n}`, configUrl: "https://example.org/c.git", architecture: "amd64", ...extra });
}
async function build(p: Project, ref = "main"): Promise<number> {
  const b = await requestBuild(db.pool, { projectId: p.id, reason: "manual", configRef: ref });
  // Leave QUEUED so the next identical request is allowed.
  expect(await failBuild(db.pool, b.id, null, "build", "lb build failed")).toBe(true);
  return b.id;
}

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe("parseManifest", () => {
  it("reads name<TAB>version lines, drops the arch qualifier, and reports every bad line", () => {
    const text = [
      "adduser\t3.134",
      "",
      "libc6:amd64\t2.36-9+deb12u4",
      "base-files\t12.4+deb12u5\r",
      "   ",
      "no-version",
      "Bad_Name\t1.0",
      "tzdata\t2024a-0+deb12u1",
      "adduser\t3.135",
      "epoch-pkg\t1:2.0~rc1-3",
      "spaces  1.0 extra",
      "x\tversion with space",
      "",
    ].join("\n");
    const { entries, errors } = parseManifest(text);
    expect(entries).toEqual([
      { package: "adduser", version: "3.134" },
      { package: "libc6", version: "2.36-9+deb12u4" },
      { package: "base-files", version: "12.4+deb12u5" },
      { package: "tzdata", version: "2024a-0+deb12u1" },
      { package: "epoch-pkg", version: "1:2.0~rc1-3" },
    ]);
    expect(errors.map((e) => e.line)).toEqual([6, 7, 9, 11, 12]);
    expect(errors.find((e) => e.line === 6)!.reason).toBe("expected a package name and a version separated by a tab");
    expect(errors.find((e) => e.line === 7)!.reason).toBe('"Bad_Name" is not a Debian package name');
    expect(errors.find((e) => e.line === 9)!.reason).toBe("package adduser is listed again (first on line 1)");
    expect(errors.find((e) => e.line === 11)!.reason).toMatch(/expected a package name and a version/);
    expect(errors.find((e) => e.line === 12)!.reason).toBe('"version with space" is not a Debian version');
  });

  it("keeps arch qualifiers when two architectures of one package are installed", () => {
    const { entries, errors } = parseManifest("libc6:amd64\t2.36\nlibc6:i386\t2.36\nzlib1g:amd64\t1.2\n");
    expect(errors).toEqual([]);
    expect(entries).toEqual([
      { package: "libc6:amd64", version: "2.36" },
      { package: "libc6:i386", version: "2.36" },
      { package: "zlib1g", version: "1.2" },
    ]);
  });

  it("returns nothing for an empty file", () => {
    expect(parseManifest("")).toEqual({ entries: [], errors: [] });
    expect(parseManifest("\n\n")).toEqual({ entries: [], errors: [] });
  });
});

describe("manifests in the database", () => {
  it("stores, replaces on re-collection, and reads back sorted", async () => {
    const p = await project();
    const id = await build(p);
    expect(await insertManifest(db.pool, id, [{ package: "zsh", version: "5.9" }, { package: "bash", version: "5.2" }, { package: "apt", version: "2.6" }])).toBe(3);
    expect(await getManifest(db.pool, id)).toEqual([
      { package: "apt", version: "2.6" },
      { package: "bash", version: "5.2" },
      { package: "zsh", version: "5.9" },
    ]);
    expect(await insertManifest(db.pool, id, [{ package: "bash", version: "5.2.15" }, { package: "dash", version: "0.5" }])).toBe(2);
    expect(await getManifest(db.pool, id)).toEqual([
      { package: "bash", version: "5.2.15" },
      { package: "dash", version: "0.5" },
    ]);
    await expect(insertManifest(db.pool, id, [{ package: "a", version: "1" }, { package: "a", version: "2" }])).rejects.toThrow(/twice/);
    expect(await insertManifest(db.pool, id, [])).toBe(0);
    expect(await getManifest(db.pool, id)).toEqual([]);
  });

  it("diffs two builds", async () => {
    const p = await project();
    const a = await build(p);
    const b = await build(p);
    await insertManifest(db.pool, a, parseManifest("apt\t2.6\nbash\t5.2\nold-tool\t1.0\nsame\t1\n").entries);
    await insertManifest(db.pool, b, parseManifest("apt\t2.7\nbash\t5.2\nnew-tool\t0.1\nsame\t1\n").entries);
    expect(await diffManifests(db.pool, a, b)).toEqual({
      added: [{ package: "new-tool", version: "0.1" }],
      removed: [{ package: "old-tool", version: "1.0" }],
      changed: [{ package: "apt", from: "2.6", to: "2.7" }],
    });
    expect(await diffManifests(db.pool, b, a)).toEqual({
      added: [{ package: "old-tool", version: "1.0" }],
      removed: [{ package: "new-tool", version: "0.1" }],
      changed: [{ package: "apt", from: "2.7", to: "2.6" }],
    });
    expect(await diffManifests(db.pool, a, a)).toEqual({ added: [], removed: [], changed: [] });
  });

  it("searches packages, hiding private projects from those who may not see them", async () => {
    const member = await createUser(db.pool, { name: "member", role: "viewer", passwordHash: "scrypt$x" });
    const other = await createUser(db.pool, { name: "other", role: "viewer", passwordHash: "scrypt$x" });
    const pub = await project();
    const priv = await project({ private: true });
    await db.pool.query("INSERT INTO project_members VALUES ($1, $2)", [priv.id, member.id]);
    const b1 = await build(pub);
    const b2 = await build(pub);
    const b3 = await build(priv);
    await insertManifest(db.pool, b1, [{ package: "openssl", version: "3.0.11" }]);
    await insertManifest(db.pool, b2, [{ package: "openssl", version: "3.0.13" }]);
    await insertManifest(db.pool, b3, [{ package: "openssl", version: "3.0.11" }]);
    const all = await searchPackages(db.pool, { viewer: { userId: null, role: "admin" }, package: "openssl" });
    expect(all.map((h) => h.buildId)).toEqual([b3, b2, b1]);
    expect(all[0]).toMatchObject({ projectName: priv.name, version: "3.0.11", state: "FAILED" });
    expect(all[0]!.finishedAt).toBeInstanceOf(Date);
    const v = await searchPackages(db.pool, { viewer: { userId: member.id, role: "viewer" }, package: "openssl", version: "3.0.11" });
    expect(v.map((h) => h.buildId)).toEqual([b3, b1]);
    const o = await searchPackages(db.pool, { viewer: { userId: other.id, role: "viewer" }, package: "openssl", version: "3.0.11" });
    expect(o.map((h) => h.buildId)).toEqual([b1]);
    const anon = await searchPackages(db.pool, { viewer: { userId: null, role: null }, package: "openssl" });
    expect(anon.map((h) => h.buildId)).toEqual([b2, b1]);
    expect(await searchPackages(db.pool, { viewer: { userId: null, role: "admin" }, package: "openssl", limit: 1 })).toHaveLength(1);
    expect(await searchPackages(db.pool, { viewer: { userId: null, role: "admin" }, package: "nothing" })).toEqual([]);
  });
});

describe("artifacts", () => {
  it("adds idempotently, lists images first, reads with owner, deletes", async () => {
    const viewer = await createUser(db.pool, { name: "art-viewer", role: "viewer", passwordHash: "scrypt$x" });
    const p = await project({ private: true });
    const id = await build(p);
    const sha = "a".repeat(64);
    const log = await addArtifact(db.pool, { buildId: id, name: "build.log", kind: "log", sha256: sha, size: 10, storedPath: "p/1/build.log" });
    const img = await addArtifact(db.pool, { buildId: id, name: "live-image-amd64.hybrid.iso", kind: "image", sha256: sha, size: 5_000_000_000, storedPath: "p/1/x.iso" });
    expect(img.size).toBe(5_000_000_000);
    const again = await addArtifact(db.pool, { buildId: id, name: "build.log", kind: "log", sha256: "b".repeat(64), size: 11, storedPath: "p/1/build.log" });
    expect(again.id).toBe(log.id);
    expect(again.sha256).toBe("b".repeat(64));
    expect((await listArtifacts(db.pool, id)).map((a) => a.name)).toEqual(["live-image-amd64.hybrid.iso", "build.log"]);
    expect((await getBuild(db.pool, id))!.artifactCount).toBe(2);
    expect(await getArtifact(db.pool, img.id)).toMatchObject({ id: img.id, buildId: id, projectId: p.id, projectName: p.name, projectPrivate: true });
    expect(await getArtifact(db.pool, img.id, { userId: viewer.id, role: "viewer" })).toBeNull();
    await expect(
      addArtifact(db.pool, { buildId: id, name: "../etc/passwd", kind: "other", sha256: sha, size: 1, storedPath: "x" }),
    ).rejects.toThrow(/artifacts_name_check/);
    const gone = await deleteArtifactsOfBuild(db.pool, id);
    expect(gone.map((a) => a.storedPath).sort()).toEqual(["p/1/build.log", "p/1/x.iso"]);
    expect(await listArtifacts(db.pool, id)).toEqual([]);
  });
});
