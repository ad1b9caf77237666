// Retention: which finished builds' images and logs may go, per project's keep_last / keep_days.
// A build is kept while EITHER limit that is set still covers it (the newest keep_last finished
// builds, or those finished within keep_days); a milestone build and a project's latest
// successful build are never pruned. The build row and its manifest rows stay (history and
// package search keep working); its artifact rows, log chunks and files go.
import { clearArtifactDir } from "./build-transitions.js";
import { withTransaction, type Pool, type Queryable } from "./pool.js";

export interface PrunableBuild {
  buildId: number;
  projectId: number;
  projectName: string;
  artifactDir: string | null;
  /** Paths relative to the artifacts dir. */
  storedPaths: string[];
  logSize: number;
}

export async function listPrunableBuilds(db: Queryable, now: Date = new Date(), limit = 500): Promise<PrunableBuild[]> {
  const { rows } = await db.query<{
    id: number;
    project_id: number;
    project_name: string;
    artifact_dir: string | null;
    stored_paths: string[] | null;
    log_size: number;
  }>(
    `WITH finished AS (
       SELECT b.id, b.project_id, b.milestone, b.state, b.artifact_dir, b.log_size,
              coalesce(b.finished_at, b.updated_at) AS finished_at,
              row_number() OVER (PARTITION BY b.project_id ORDER BY b.id DESC) AS rank
         FROM builds b
        WHERE b.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
     ), latest_success AS (
       SELECT DISTINCT ON (project_id) project_id, id FROM builds
        WHERE state = 'SUCCEEDED' ORDER BY project_id, id DESC
     )
     SELECT f.id, f.project_id, p.name AS project_name, f.artifact_dir, f.log_size,
            (SELECT array_agg(a.stored_path ORDER BY a.id) FROM artifacts a WHERE a.build_id = f.id) AS stored_paths
       FROM finished f
       JOIN projects p ON p.id = f.project_id
      WHERE (p.keep_last IS NOT NULL OR p.keep_days IS NOT NULL)
        AND (p.keep_last IS NULL OR f.rank > p.keep_last)
        AND (p.keep_days IS NULL OR f.finished_at < $1::timestamptz - make_interval(days => p.keep_days))
        AND f.milestone IS NULL
        AND NOT EXISTS (SELECT 1 FROM latest_success s WHERE s.id = f.id)
        AND (f.artifact_dir IS NOT NULL
             OR EXISTS (SELECT 1 FROM artifacts a WHERE a.build_id = f.id)
             OR EXISTS (SELECT 1 FROM build_log_chunks l WHERE l.build_id = f.id))
      ORDER BY f.id
      LIMIT $2`,
    [now, limit],
  );
  return rows.map((r) => ({
    buildId: r.id,
    projectId: r.project_id,
    projectName: r.project_name,
    artifactDir: r.artifact_dir,
    storedPaths: r.stored_paths ?? [],
    logSize: r.log_size,
  }));
}

/** After the files are gone: the build's artifact rows and log chunks, in one transaction. */
export async function pruneBuildRows(pool: Pool, buildId: number): Promise<{ artifacts: number; logChunks: number }> {
  return withTransaction(pool, async (c) => {
    const a = await c.query("DELETE FROM artifacts WHERE build_id = $1", [buildId]);
    const l = await c.query("DELETE FROM build_log_chunks WHERE build_id = $1", [buildId]);
    await clearArtifactDir(c, buildId);
    await c.query(
      `INSERT INTO audit_log (actor, action, object_type, object_id, details)
       VALUES ('master', 'build.prune', 'build', $1, $2)`,
      [String(buildId), JSON.stringify({ artifacts: a.rowCount ?? 0, log_chunks: l.rowCount ?? 0 })],
    );
    return { artifacts: a.rowCount ?? 0, logChunks: l.rowCount ?? 0 };
  });
}
