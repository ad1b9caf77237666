// The one writer of a build's state, walked exhaustively against a real PostgreSQL: every legal
// (from, to) pair of states.ts's table through the function named for it wins once and only
// once; the same function from any other state, or with a stale cookie, returns false and
// changes nothing (neither the build nor the builder that holds it).
import { describe, expect, it } from "vitest";
import {
  BuildStateError,
  cancelBuild,
  claimQueuedBuilds,
  failBuild,
  finishCancel,
  giveBackBuild,
  markBuildStarted,
  markBuildsStarted,
  markCollecting,
  markSucceeded,
  requestBuild,
  withTransaction,
  type Pool,
} from "@lexbuilder/shared-models/db";
import { BUILD_STATES, BUILD_TRANSITIONS, type BuildState } from "@lexbuilder/shared-models/states";
import { driveBuild } from "../testing/drive.js";
import { useDispatchDatabase } from "./dispatch-fixture.js";

const fixture = useDispatchDatabase();

interface Writer {
  /** The transitions it makes, from → to. */
  moves: Partial<Record<BuildState, BuildState>>;
  run(pool: Pool, id: number, cookie: string | null): Promise<boolean>;
}

const WRITERS: Record<string, Writer> = {
  claimQueuedBuilds: {
    moves: { QUEUED: "DISPATCHING" },
    run: async (pool, id) => (await claimQueuedBuilds(pool, [await fixture.builder(["amd64"])])).some((c) => c.id === id),
  },
  markBuildStarted: { moves: { DISPATCHING: "BUILDING" }, run: (pool, id, cookie) => markBuildStarted(pool, id, cookie ?? "") },
  markBuildsStarted: {
    moves: { DISPATCHING: "BUILDING" },
    run: async (pool, id, cookie) => (await markBuildsStarted(pool, [{ id, cookie: cookie ?? "" }])).includes(id),
  },
  markCollecting: { moves: { BUILDING: "COLLECTING" }, run: (pool, id, cookie) => markCollecting(pool, id, cookie ?? "", {}) },
  markSucceeded: { moves: { COLLECTING: "SUCCEEDED" }, run: (pool, id, cookie) => withTransaction(pool, (c) => markSucceeded(c, id, cookie ?? "", `p/${id}`)) },
  giveBackBuild: {
    moves: { DISPATCHING: "QUEUED", BUILDING: "QUEUED", COLLECTING: "QUEUED" },
    run: async (pool, id, cookie) => (await giveBackBuild(pool, id, cookie ?? "", { counted: true, message: "Lost.", maxRequeues: 3 })) === "QUEUED",
  },
  failBuild: {
    moves: { QUEUED: "FAILED", DISPATCHING: "FAILED", BUILDING: "FAILED", COLLECTING: "FAILED" },
    run: (pool, id, cookie) => failBuild(pool, id, cookie, "build", "It broke."),
  },
  cancelBuild: {
    moves: { QUEUED: "CANCELLED", DISPATCHING: "CANCELLING", BUILDING: "CANCELLING", COLLECTING: "CANCELLING" },
    // Cancel is a user's request, not an actor's: no cookie. It says the state it left the build
    // in; it won if that is a new one.
    run: async (pool, id) => {
      const before = await row(id);
      try {
        return (await cancelBuild(pool, id)).state !== before.state;
      } catch (err) {
        if (err instanceof BuildStateError) return false;
        throw err;
      }
    },
  },
  finishCancel: { moves: { CANCELLING: "CANCELLED" }, run: (pool, id) => finishCancel(pool, id) },
};

/** Cookie-guarded writers: a stale cookie must not move the build. */
const COOKIE_GUARDED = ["markBuildStarted", "markBuildsStarted", "markCollecting", "markSucceeded", "giveBackBuild", "failBuild"];

async function row(id: number) {
  const { rows } = await fixture.db.pool.query(
    `SELECT b.state, b.attempt, b.cookie, b.builder_id, b.updated_at, b.requeue_count,
            (SELECT array_agg(bl.id) FROM builders bl WHERE bl.current_build_id = b.id) AS holders
       FROM builds b WHERE b.id = $1`,
    [id],
  );
  return rows[0];
}

async function buildIn(state: BuildState): Promise<{ id: number; cookie: string | null }> {
  const b = await requestBuild(fixture.db.pool, { projectId: await fixture.project("amd64"), reason: "manual" });
  await driveBuild(fixture.db.pool, b.id, state, { builderId: await fixture.builder(["amd64"]) });
  const r = await row(b.id);
  return { id: b.id, cookie: r.cookie };
}

describe("the build writer", () => {
  it("has a writer for every legal transition, and none for an illegal one", () => {
    const made = new Set(Object.values(WRITERS).flatMap((w) => Object.entries(w.moves).map(([from, to]) => `${from}->${to}`)));
    const legal = new Set(BUILD_STATES.flatMap((from) => BUILD_TRANSITIONS[from].map((to) => `${from}->${to}`)));
    expect(made).toEqual(legal);
  });

  for (const [name, w] of Object.entries(WRITERS)) {
    for (const from of BUILD_STATES) {
      const to = w.moves[from];
      if (to) {
        it(`${name}: ${from} → ${to} wins once${COOKIE_GUARDED.includes(name) && from !== "QUEUED" ? ", never with a stale cookie" : ""}`, async () => {
          const b = await buildIn(from);
          if (COOKIE_GUARDED.includes(name) && from !== "QUEUED") {
            const before = await row(b.id);
            expect(await w.run(fixture.db.pool, b.id, `${b.id}-99`)).toBe(false);
            expect(await row(b.id)).toEqual(before);
          }
          expect(await w.run(fixture.db.pool, b.id, b.cookie)).toBe(true);
          const after = await row(b.id);
          expect(after.state).toBe(to);
          // The builder holds the build exactly while a slave may hold it.
          const held = to === "DISPATCHING" || to === "BUILDING" || to === "COLLECTING" || to === "CANCELLING";
          expect(after.holders === null ? 0 : after.holders.length).toBe(held ? 1 : 0);
          if (to === "DISPATCHING") expect(after).toMatchObject({ attempt: 1, cookie: `${b.id}-1` });
          if (to === "QUEUED") expect(after).toMatchObject({ cookie: null, builder_id: null, requeue_count: 1 });
          const settled = await row(b.id);
          // The same call again is stale.
          expect(await w.run(fixture.db.pool, b.id, b.cookie)).toBe(false);
          expect(await row(b.id)).toEqual(settled);
        });
      } else {
        it(`${name}: refused from ${from}, nothing changes`, async () => {
          const b = await buildIn(from);
          const before = await row(b.id);
          expect(await w.run(fixture.db.pool, b.id, b.cookie)).toBe(false);
          expect(await row(b.id)).toEqual(before);
        });
      }
    }
  }

  it("lets exactly one of 20 concurrent claimers take a build", async () => {
    const b = await requestBuild(fixture.db.pool, { projectId: await fixture.project("amd64"), reason: "manual" });
    const builders = await Promise.all(Array.from({ length: 20 }, () => fixture.builder(["amd64"])));
    const claims = await Promise.all(builders.map((id) => claimQueuedBuilds(fixture.db.pool, [id])));
    expect(claims.flat().map((c) => c.id)).toEqual([b.id]);
  });
});
