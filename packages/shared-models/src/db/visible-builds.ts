// Which of some builds a viewer may see (their project is public, or the viewer is a member or
// an admin): lists that name builds of any project (the builders' current builds) drop the rest.
import type { Queryable } from "./pool.js";
import { projectVisibilitySql, type Viewer } from "./projects.js";

export async function visibleBuildIds(db: Queryable, viewer: Viewer, ids: number[]): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const params: unknown[] = [ids];
  const visible = projectVisibilitySql("p", viewer, params);
  const { rows } = await db.query<{ id: string | number }>(
    `SELECT b.id FROM builds b JOIN projects p ON p.id = b.project_id WHERE b.id = ANY($1::bigint[]) AND ${visible}`,
    params,
  );
  return new Set(rows.map((r) => Number(r.id)));
}
