import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, recordNotifications, type TestDatabase } from "../testing/index.js";
import {
  addBuilder,
  BuilderExistsError,
  deleteBuilder,
  disableBuilder,
  enableBuilder,
  getBuilderById,
  getBuilderByName,
  getBuilderWithToken,
  listBuilders,
  listBuildersWithTokens,
  recordBuilderContact,
  recordScanFailure,
  setBuilderState,
  updateBuilderInfo,
} from "../src/db/builders.js";
import { createProject } from "../src/db/projects.js";
import { getBuildRow, requestBuild } from "../src/db/builds.js";
import { countBuilderFailure } from "../src/db/build-lifecycle.js";
import { driveBuild } from "../testing/drive.js";
import { Channel } from "../src/db/channels.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

let n = 0;
async function builder() {
  n++;
  return addBuilder(db.pool, { name: `b${n}`, url: `http://127.0.0.1:${8200 + n}`, token: `secret-${n}` });
}
async function build() {
  n++;
  const p = await createProject(db.pool, { name: `bp${n}`, configUrl: "https://example.org/c.git", architecture: "amd64" });
  // Each new build first in the queue, so a test can claim it.
  return requestBuild(db.pool, { projectId: p.id, reason: "manual", priority: n });
}

/** The notifications `fn` causes on `channel`: all of them, not just the first `expected`. */
async function collectNotifications(channel: string, fn: () => Promise<void>): Promise<unknown[]> {
  const recorder = await recordNotifications(db.url, channel);
  try {
    await fn();
    await recorder.settle();
    return recorder.got;
  } finally {
    await recorder.close();
  }
}

describe("builders", () => {
  it("never shows the token outside the master's functions", async () => {
    const b = await builder();
    expect(b).not.toHaveProperty("token");
    expect(b).toMatchObject({ state: "UNKNOWN", enabled: true, ready: false, architectures: [], info: {}, scanFailures: 0, failureCount: 0, currentBuildId: null });
    expect(await getBuilderById(db.pool, b.id)).not.toHaveProperty("token");
    expect(await getBuilderByName(db.pool, b.name)).not.toHaveProperty("token");
    for (const x of await listBuilders(db.pool)) expect(x).not.toHaveProperty("token");
    expect((await getBuilderWithToken(db.pool, b.id))!.token).toBe(b.name.replace("b", "secret-"));
    expect((await listBuildersWithTokens(db.pool)).find((x) => x.id === b.id)!.token).toMatch(/^secret-/);
    await expect(addBuilder(db.pool, { name: b.name, url: "http://127.0.0.1:1", token: "t" })).rejects.toThrow(
      `A builder named ${b.name} already exists; choose another name.`,
    );
    await expect(addBuilder(db.pool, { name: "bad", url: "ftp://x", token: "t" })).rejects.not.toBeInstanceOf(BuilderExistsError);
  });

  it("enables and disables with a reason, and notifies", async () => {
    const b = await builder();
    const got = await collectNotifications(
      Channel.builders,
      async () => {
        await db.pool.query("UPDATE builders SET failure_count = 4 WHERE id = $1", [b.id]);
        await recordScanFailure(db.pool, b.id);
        expect(await disableBuilder(db.pool, b.id, "5 failures in a row")).toBe(true);
        expect(await getBuilderById(db.pool, b.id)).toMatchObject({ enabled: false, disabledReason: "5 failures in a row", failureCount: 4 });
        expect(await enableBuilder(db.pool, b.id)).toBe(true);
        expect(await getBuilderById(db.pool, b.id)).toMatchObject({ enabled: true, disabledReason: null, failureCount: 0, scanFailures: 0 });
        expect(await enableBuilder(db.pool, 999999)).toBe(false);
      },
    );
    expect(got).toEqual([{ id: b.id }, { id: b.id }]);
  });

  it("records info and contacts, notifying only on change", async () => {
    const b = await builder();
    const got = await collectNotifications(
      Channel.builders,
      async () => {
        await updateBuilderInfo(db.pool, b.id, { architectures: ["amd64", "i386"], info: { hostname: "h" }, ready: true });
        await updateBuilderInfo(db.pool, b.id, { architectures: ["amd64", "i386"], info: { hostname: "h2" }, ready: true }); // no change that matters
        await updateBuilderInfo(db.pool, b.id, { architectures: ["amd64", "i386"], info: {}, ready: false, notReadyReason: "lb is missing" });
        await recordBuilderContact(db.pool, b.id, { state: "IDLE", statusVersion: 1 });
        await recordBuilderContact(db.pool, b.id, { state: "IDLE", statusVersion: 2 }); // same state
        await recordBuilderContact(db.pool, b.id, { state: "BUILDING", statusVersion: 3 });
      },
    );
    expect(got).toHaveLength(4);
    // Contacts say so, with the new state (the master acts on it without re-reading the row).
    expect(got.slice(2)).toEqual([
      { id: b.id, state: "IDLE", contact: true },
      { id: b.id, state: "BUILDING", contact: true },
    ]);
    const row = (await getBuilderById(db.pool, b.id))!;
    expect(row).toMatchObject({ architectures: ["amd64", "i386"], ready: false, notReadyReason: "lb is missing", state: "BUILDING", statusVersion: 3 });
    expect(row.lastContactAt).toBeInstanceOf(Date);
  });

  it("counts consecutive scan failures until a contact, and failures until reset", async () => {
    const b = await builder();
    expect(await recordScanFailure(db.pool, b.id)).toBe(1);
    expect(await recordScanFailure(db.pool, b.id)).toBe(2);
    expect(await recordScanFailure(db.pool, b.id)).toBe(3);
    expect(await setBuilderState(db.pool, b.id, "OFFLINE")).toBe(true);
    expect(await setBuilderState(db.pool, b.id, "OFFLINE")).toBe(false);
    await recordBuilderContact(db.pool, b.id, { state: "IDLE", statusVersion: 9 });
    expect(await recordScanFailure(db.pool, b.id)).toBe(1);
    expect(await recordScanFailure(db.pool, 999999)).toBe(0);
    expect(await countBuilderFailure(db.pool, b.id, "lost a job", 5)).toEqual({ failureCount: 1, disabled: false });
    expect(await countBuilderFailure(db.pool, b.id, "lost a job", 2)).toEqual({ failureCount: 2, disabled: true });
    expect((await getBuilderById(db.pool, b.id))!.failureCount).toBe(2);
  });

  it("deletes a builder, leaving its builds without one", async () => {
    const b = await builder();
    const x = await build();
    await updateBuilderInfo(db.pool, b.id, { architectures: ["amd64"], info: {}, ready: true });
    await driveBuild(db.pool, x.id, "DISPATCHING", { builderId: b.id });
    expect((await getBuilderById(db.pool, b.id))!.currentBuildId).toBe(x.id);
    expect(await deleteBuilder(db.pool, b.id)).toBe(true);
    expect(await deleteBuilder(db.pool, b.id)).toBe(false);
    expect(await getBuilderById(db.pool, b.id)).toBeNull();
    expect((await getBuildRow(db.pool, x.id))!.builderId).toBeNull();
  });
});

describe("lookups by name that cannot exist", () => {
  it("find nothing instead of failing, whatever the name holds (NUL, huge, empty)", async () => {
    const { getBuilderByName, getProjectByName, getUserByName } = await import("../src/db/index.js");
    for (const name of ["a\0b", "\0", "x".repeat(10_000), ""]) {
      expect(await getBuilderByName(db.pool, name)).toBeNull();
      expect(await getProjectByName(db.pool, name)).toBeNull();
      expect(await getUserByName(db.pool, name)).toBeNull();
    }
  });
});
