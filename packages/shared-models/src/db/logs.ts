// Build logs: append-only chunks keyed by byte offset, so the master appends what it pulled
// from the slave and the webapp streams any range without reading the whole log.
import type { Queryable } from "./pool.js";
import { Channel } from "./channels.js";
import { notify } from "./listen.js";
import { appendLogChunkAt, deleteLogChunks } from "./build-transitions.js";

/** The most readLog returns in one call; callers loop with the next offset. */
export const MAX_LOG_READ_BYTES = 8 * 1024 * 1024;

/**
 * Appends `data` at `offset`, only if `offset` is the log's current size (one statement: the
 * builds row's log_size is the guard and moves with the chunk insert). Returns the new size,
 * or null when the offset was stale (someone else appended, or the build does not exist).
 * Notifies the log channel {id, size} on success.
 */
export async function appendLog(db: Queryable, buildId: number, offset: number, data: Buffer): Promise<number | null> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`A log offset must be a non-negative integer, not ${offset}.`);
  if (data.length === 0) {
    const { rows } = await db.query<{ size: number }>("SELECT log_size AS size FROM builds WHERE id = $1 AND log_size = $2", [buildId, offset]);
    return rows[0]?.size ?? null;
  }
  const size = await appendLogChunkAt(db, buildId, offset, data);
  if (size === null) return null;
  await notify(db, Channel.log, { id: buildId, size });
  return size;
}

/**
 * Up to `maxBytes` (at most MAX_LOG_READ_BYTES) of the log from `offset`; empty at or past the
 * end. Fetches only the chunks that overlap the range, and only their overlapping bytes: the
 * first chunk is found by an index lookup of the greatest offset ≤ the start.
 */
export async function readLog(db: Queryable, buildId: number, offset: number, maxBytes: number = MAX_LOG_READ_BYTES): Promise<Buffer> {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`A log offset must be a non-negative integer, not ${offset}.`);
  const want = Math.min(Math.max(0, Math.floor(maxBytes)), MAX_LOG_READ_BYTES);
  if (want === 0) return Buffer.alloc(0);
  const end = offset + want;
  const { rows } = await db.query<{ o: number; part: Buffer }>(
    `SELECT c.byte_offset AS o,
            substring(c.data FROM (greatest($2 - c.byte_offset, 0) + 1)::int FOR greatest(least($3, c.byte_offset + length(c.data)) - greatest($2, c.byte_offset), 0)::int) AS part
       FROM build_log_chunks c
      WHERE c.build_id = $1
        AND c.byte_offset >= coalesce((SELECT max(s.byte_offset) FROM build_log_chunks s WHERE s.build_id = $1 AND s.byte_offset <= $2), 0)
        AND c.byte_offset < $3
      ORDER BY c.byte_offset`,
    [buildId, offset, end],
  );
  const parts: Buffer[] = [];
  let expected = offset;
  for (const r of rows) {
    const start = Math.max(r.o, offset);
    if (start !== expected) break; // a gap (cannot happen with appendLog; never invent bytes)
    if (r.part.length === 0) continue;
    parts.push(r.part);
    expected += r.part.length;
  }
  return Buffer.concat(parts);
}

/** The log's size in bytes, or null if there is no such build. */
export async function getLogSize(db: Queryable, buildId: number): Promise<number | null> {
  const { rows } = await db.query<{ size: number }>("SELECT log_size AS size FROM builds WHERE id = $1", [buildId]);
  return rows[0]?.size ?? null;
}

/**
 * Deletes the log and sets its size back to 0 (retention, or a re-queued build starting a new
 * log). Returns the number of bytes removed. Notifies {id, size: 0} so live viewers start over.
 */
export async function deleteLog(db: Queryable, buildId: number): Promise<number> {
  const removed = await deleteLogChunks(db, buildId);
  await notify(db, Channel.log, { id: buildId, size: 0 });
  return removed;
}
