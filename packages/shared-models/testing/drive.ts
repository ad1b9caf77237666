// Test support: moves a build to a state through the same writer functions the daemons use
// (build-transitions.ts), so tests never write a build's state any other way. Reaching a state
// a slave holds needs a builder: the caller's, or a "driver-N" builder made for the purpose.
import { randomBytes } from "node:crypto";
import type { BuildState } from "../src/states.js";
import type { Pool } from "../src/db/pool.js";
import { withTransaction } from "../src/db/pool.js";
import { getBuildRow } from "../src/db/builds.js";
import { addBuilder, updateBuilderInfo } from "../src/db/builders.js";
import {
  cancelBuild,
  claimQueuedBuilds,
  failBuild,
  finishCancel,
  giveBackBuild,
  markBuildStarted,
  markCollecting,
  markSucceeded,
} from "../src/db/build-transitions.js";

export interface DriveOptions {
  /** The builder to claim with (enabled, ready, free, of the build's architecture). */
  builderId?: number;
  configRevision?: string;
  artifactDir?: string;
  failureMessage?: string;
}

const FORWARD: BuildState[] = ["QUEUED", "DISPATCHING", "BUILDING", "COLLECTING", "SUCCEEDED"];

/** A ready builder for `architecture` that holds nothing. */
export async function addDriverBuilder(pool: Pool, architecture: string): Promise<number> {
  const b = await addBuilder(pool, { name: `driver-${randomBytes(4).toString("hex")}`, url: "http://127.0.0.1:1", token: "t" });
  await updateBuilderInfo(pool, b.id, { architectures: [architecture], info: {}, ready: true });
  return b.id;
}

/**
 * Moves the build from its state to `to`, one legal transition at a time; throws if a step
 * loses (the build was not where the test thought). Claiming takes the first build of the
 * queue, so a test with other queued builds of the same architecture requests this one with a
 * higher priority.
 */
export async function driveBuild(pool: Pool, buildId: number, to: BuildState, opts: DriveOptions = {}): Promise<void> {
  for (let steps = 0; steps < 6; steps++) {
    const b = await getBuildRow(pool, buildId);
    if (!b) throw new Error(`There is no build #${buildId}.`);
    if (b.state === to) return;
    const won = await step(pool, b.id, b.state, b.cookie, b.architecture, to, opts);
    if (!won) throw new Error(`Build #${buildId} could not go on from ${b.state} towards ${to}.`);
  }
  throw new Error(`Build #${buildId} cannot reach ${to}.`);
}

async function step(pool: Pool, id: number, from: BuildState, cookie: string | null, arch: string, to: BuildState, opts: DriveOptions): Promise<boolean> {
  if (to === "FAILED") return failBuild(pool, id, cookie, "build", opts.failureMessage ?? "lb build failed");
  if (to === "CANCELLED" && from === "CANCELLING") return finishCancel(pool, id);
  if ((to === "CANCELLED" && from !== "QUEUED") || (to === "CANCELLING" && from !== "QUEUED")) return (await cancelBuild(pool, id)).state !== from;
  if (to === "CANCELLED") return (await cancelBuild(pool, id)).state === "CANCELLED";
  if (to === "QUEUED") return (await giveBackBuild(pool, id, cookie!, { counted: false, message: "Given back by a test.", maxRequeues: 0 })) === "QUEUED";
  const next = to === "CANCELLING" ? "DISPATCHING" : FORWARD[FORWARD.indexOf(from) + 1];
  switch (next) {
    case "DISPATCHING": {
      const claims = await claimQueuedBuilds(pool, [opts.builderId ?? (await addDriverBuilder(pool, arch))]);
      if (claims[0]?.id === id) return true;
      throw new Error(`Build #${id} is not first in the queue (claimed: ${claims.map((c) => c.id).join(", ") || "none"}); request it with a higher priority.`);
    }
    case "BUILDING":
      return markBuildStarted(pool, id, cookie!);
    case "COLLECTING":
      return markCollecting(pool, id, cookie!, { configRevision: opts.configRevision ?? null });
    case "SUCCEEDED":
      return withTransaction(pool, (c) => markSucceeded(c, id, cookie!, opts.artifactDir ?? `p/${id}`));
    default:
      return false;
  }
}
