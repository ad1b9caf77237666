// The one way an action writes: its changes and their audit row in one transaction, then the
// page caches dropped (after the commit, so no request can cache the old state again).
import { withTransaction, type PoolClient } from "@lexbuilder/shared-models/db";
import type { AppContext } from "../context.js";

export async function writeAndAudit<T>(ctx: AppContext, write: (db: PoolClient) => Promise<T>): Promise<T> {
  const result = await withTransaction(ctx.pool, write);
  ctx.caches?.dataChanged();
  return result;
}
