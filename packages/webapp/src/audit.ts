// Every change a person makes through the console or the API leaves an audit row. Actions pass
// their transaction's client, so the row and the change commit (or roll back) together.
import { recordAudit, type Queryable } from "@lexbuilder/shared-models/db";

export async function audit(
  db: Queryable,
  user: { id: number; name: string },
  action: string,
  objectType: string,
  objectId: string | number | null,
  details: Record<string, unknown>,
): Promise<void> {
  await recordAudit(db, {
    userId: user.id,
    actor: user.name,
    action,
    objectType,
    objectId: objectId === null ? null : String(objectId),
    details,
  });
}
