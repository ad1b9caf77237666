// Which builders a dispatch pass may claim for (the claim itself is claimQueuedBuilds in
// build-transitions.ts).
import type { Queryable } from "./pool.js";

export interface DispatchableBuilder {
  id: number;
  name: string;
  architectures: string[];
}

/**
 * The builders a dispatch pass may claim for, in order of preference (fewest failures, then the
 * most recently heard from): enabled, ready, last seen IDLE, holding no build, and supporting an
 * architecture some QUEUED build needs. One statement: under a burst of requests every round
 * trip before the claim delays the first builds.
 */
export async function listBuildersForQueuedBuilds(db: Queryable): Promise<DispatchableBuilder[]> {
  const { rows } = await db.query<DispatchableBuilder>(
    `SELECT id, name, architectures FROM builders
      WHERE enabled AND ready AND state = 'IDLE' AND current_build_id IS NULL
        AND architectures && ARRAY(SELECT DISTINCT architecture FROM builds WHERE state = 'QUEUED')
      ORDER BY failure_count, last_contact_at DESC NULLS LAST, id`,
  );
  return rows;
}
