// Every change a person makes through the console or the API leaves an audit row.
import { recordAudit } from "@lexbuilder/shared-models";
import type { AppContext } from "./context.js";

export async function audit(
  ctx: AppContext,
  user: { id: number; name: string },
  action: string,
  objectType: string,
  objectId: string | number | null,
  details: Record<string, unknown>,
): Promise<void> {
  await recordAudit(ctx.pool, {
    userId: user.id,
    actor: user.name,
    action,
    objectType,
    objectId: objectId === null ? null : String(objectId),
    details,
  });
}
