// The builders as a user sees them: a builder busy with a build of a project the user may not
// see shows no current build (not even its number).
import { listBuilders, visibleBuildIds, type BuilderPublic, type Pool, type Viewer } from "@lexbuilder/shared-models/db";

export async function buildersSeenBy(pool: Pool, viewer: Viewer): Promise<BuilderPublic[]> {
  const builders = await listBuilders(pool);
  if (viewer.role === "admin") return builders;
  const current = builders.map((b) => b.currentBuildId).filter((id): id is number => id !== null);
  const visible = await visibleBuildIds(pool, viewer, current);
  return builders.map((b) => (b.currentBuildId === null || visible.has(b.currentBuildId) ? b : { ...b, currentBuildId: null }));
}
