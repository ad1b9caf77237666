// The dispatcher's batch SQL against a real PostgreSQL: one transaction claims a build for many
// builders (queue order, architectures, preference order, busy and unready builders skipped),
// two claimers never share a build, and the batch DISPATCHING → BUILDING is guarded by cookie.
import { describe, expect, it } from "vitest";
import {
  claimQueuedBuilds,
  listBuildersForQueuedBuilds,
  markBuildsStarted,
  requestBuild,
} from "@lexbuilder/shared-models/db";
import { useDispatchDatabase } from "./dispatch-fixture.js";

const fixture = useDispatchDatabase();
const builder = fixture.builder;

async function queue(arch: string, priority = 0): Promise<number> {
  return (await requestBuild(fixture.db.pool, { projectId: await fixture.project(arch, priority), reason: "manual" })).id;
}

async function rows(sql: string, params: unknown[] = []) {
  return (await fixture.db.pool.query(sql, params)).rows;
}

describe("listBuildersForQueuedBuilds", () => {
  it("lists free, enabled, ready, idle builders that can take a queued build, preferred first", async () => {
    const amd = await builder(["amd64"]);
    const arm = await builder(["arm64"]);
    const both = await builder(["arm64", "amd64"]);
    await builder(["amd64"], false); // not ready
    const disabled = await builder(["amd64"]);
    const offline = await builder(["amd64"]);
    const failing = await builder(["amd64"]);
    await fixture.db.pool.query("UPDATE builders SET enabled = false WHERE id = $1", [disabled]);
    await fixture.db.pool.query("UPDATE builders SET state = 'OFFLINE' WHERE id = $1", [offline]);
    await fixture.db.pool.query("UPDATE builders SET failure_count = 2 WHERE id = $1", [failing]);
    await fixture.db.pool.query("UPDATE builders SET last_contact_at = now() - interval '1 minute' WHERE id = ANY($1)", [[amd, both, failing]]);
    await fixture.db.pool.query("UPDATE builders SET last_contact_at = now() WHERE id = $1", [both]);
    // Nothing queued: nobody.
    expect(await listBuildersForQueuedBuilds(fixture.db.pool)).toEqual([]);
    // An amd64 build: the amd64-capable ones, fewest failures first, then the most recently heard from.
    const first = await queue("amd64");
    const ids = async () => (await listBuildersForQueuedBuilds(fixture.db.pool)).map((b) => b.id);
    expect(await ids()).toEqual([both, amd, failing]);
    // A builder holding a build is not free.
    await claimQueuedBuilds(fixture.db.pool, [both]);
    expect(await rows("SELECT state FROM builds WHERE id = $1", [first])).toEqual([{ state: "DISPATCHING" }]);
    // Only an arm64 build is queued now: the free arm64 builder ("both" holds the amd64 one).
    await queue("arm64");
    expect(await ids()).toEqual([arm]);
  });
});

describe("claimQueuedBuilds", () => {
  it("gives builds in queue order to the first preferred builder of their architecture, in one call", async () => {
    const both = await builder(["amd64", "arm64"]);
    const amd = await builder(["amd64"]);
    const arm = await builder(["arm64"]);
    const unready = await builder(["amd64"], false);
    const low = await queue("amd64", 0);
    const high = await queue("amd64", 10);
    const armBuild = await queue("arm64", 0);
    const i386 = await queue("i386", 50);
    const claims = await claimQueuedBuilds(fixture.db.pool, [both, amd, arm, unready]);
    const given = Object.fromEntries(claims.map((c) => [c.id, c.builderId]));
    // high first → the first preferred builder; low → the next amd64 one; arm64 → the arm64 one.
    expect(given).toEqual({ [high]: both, [low]: amd, [armBuild]: arm });
    expect(claims.find((c) => c.id === high)).toMatchObject({ cookie: `${high}-1`, attempt: 1, architecture: "amd64" });
    expect(await rows("SELECT id, state, builder_id FROM builds WHERE id = ANY($1) ORDER BY id", [[low, high, armBuild, i386]])).toEqual([
      { id: low, state: "DISPATCHING", builder_id: amd },
      { id: high, state: "DISPATCHING", builder_id: both },
      { id: armBuild, state: "DISPATCHING", builder_id: arm },
      { id: i386, state: "QUEUED", builder_id: null },
    ]);
    expect(await rows("SELECT id, current_build_id FROM builders ORDER BY id")).toEqual([
      { id: both, current_build_id: high },
      { id: amd, current_build_id: low },
      { id: arm, current_build_id: armBuild },
      { id: unready, current_build_id: null },
    ]);
    // Every builder is busy now.
    expect(await claimQueuedBuilds(fixture.db.pool, [both, amd, arm, unready])).toEqual([]);
  });

  it("claims 100 builds for 100 builders at once, and two claimers never share a build", async () => {
    const builders: number[] = [];
    for (let i = 0; i < 100; i++) builders.push(await builder(["amd64"]));
    const builds: number[] = [];
    for (let i = 0; i < 100; i++) builds.push(await queue("amd64"));
    const [a, b] = await Promise.all([claimQueuedBuilds(fixture.db.pool, builders.slice(0, 60)), claimQueuedBuilds(fixture.db.pool, builders.slice(40))]);
    const claimed = [...a, ...b];
    expect(claimed.length).toBe(100);
    expect(new Set(claimed.map((c) => c.id)).size).toBe(100);
    expect(new Set(claimed.map((c) => c.builderId)).size).toBe(100);
    expect(await rows("SELECT count(*)::int AS n FROM builds WHERE state = 'DISPATCHING'")).toEqual([{ n: 100 }]);
  });
});

describe("markBuildsStarted", () => {
  it("moves DISPATCHING builds with the right cookie to BUILDING and leaves the others", async () => {
    const b1 = await builder(["amd64"]);
    const b2 = await builder(["amd64"]);
    await queue("amd64");
    await queue("amd64");
    const [c1, c2] = await claimQueuedBuilds(fixture.db.pool, [b1, b2]);
    const moved = await markBuildsStarted(fixture.db.pool, [
      { id: c1!.id, cookie: c1!.cookie },
      { id: c2!.id, cookie: `${c2!.id}-9` },
    ]);
    expect(moved).toEqual([c1!.id]);
    const [r1] = await rows("SELECT state, started_at FROM builds WHERE id = $1", [c1!.id]);
    expect(r1.state).toBe("BUILDING");
    expect(r1.started_at).toBeInstanceOf(Date);
    expect((await rows("SELECT state FROM builds WHERE id = $1", [c2!.id]))[0].state).toBe("DISPATCHING");
    // Not again: it is no longer DISPATCHING.
    expect(await markBuildsStarted(fixture.db.pool, [{ id: c1!.id, cookie: c1!.cookie }])).toEqual([]);
  });
});
