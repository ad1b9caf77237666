// Which projects a user belongs to, in one query (a list of projects decides per project what
// the user may see of its secrets without asking once per project).
import type { Queryable } from "./pool.js";

export async function listMemberProjectIds(db: Queryable, userId: number): Promise<Set<number>> {
  const { rows } = await db.query<{ id: string | number }>("SELECT project_id AS id FROM project_members WHERE user_id = $1", [userId]);
  return new Set(rows.map((r) => Number(r.id)));
}
