// Artifacts: the files the master collected for a build (image, manifest, lists, log), stored
// under the artifacts directory; the rows say where and what.
import type { Queryable } from "./pool.js";
import { isValidId, projectVisibilitySql, type Viewer } from "./projects.js";
import type { FileKind } from "../protocol/types.js";

export interface ArtifactInput {
  buildId: number;
  name: string;
  kind: FileKind;
  sha256: string;
  size: number;
  /** Relative to the artifacts directory. */
  storedPath: string;
}

export interface Artifact extends ArtifactInput {
  id: number;
  createdAt: Date;
}

/** An artifact with what a download route needs to check visibility and name the file. */
export interface ArtifactWithOwner extends Artifact {
  projectId: number;
  projectName: string;
  projectPrivate: boolean;
}

const COLUMNS = (a: string) =>
  `${a}.id, ${a}.build_id AS "buildId", ${a}.name, ${a}.kind, ${a}.sha256, ${a}.size, ${a}.stored_path AS "storedPath", ${a}.created_at AS "createdAt"`;

/**
 * Records a collected file. Idempotent per (build, name): a master that re-collects after a
 * crash overwrites the row instead of failing.
 */
export async function addArtifact(db: Queryable, input: ArtifactInput): Promise<Artifact> {
  const { rows } = await db.query<Artifact>(
    `INSERT INTO artifacts AS a (build_id, name, kind, sha256, size, stored_path) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (build_id, name) DO UPDATE SET kind = EXCLUDED.kind, sha256 = EXCLUDED.sha256, size = EXCLUDED.size,
       stored_path = EXCLUDED.stored_path, created_at = now()
     RETURNING ${COLUMNS("a")}`,
    [input.buildId, input.name, input.kind, input.sha256, input.size, input.storedPath],
  );
  return rows[0]!;
}

/** A build's files: images first, then by name. */
export async function listArtifacts(db: Queryable, buildId: number): Promise<Artifact[]> {
  const { rows } = await db.query<Artifact>(
    `SELECT ${COLUMNS("a")} FROM artifacts a WHERE a.build_id = $1
      ORDER BY array_position(ARRAY['image','manifest','files','contents','log','other'], a.kind), a.name`,
    [buildId],
  );
  return rows;
}

/** One artifact with its project; null if none or (with a viewer) not visible to the viewer. */
export async function getArtifact(db: Queryable, id: number, viewer?: Viewer): Promise<ArtifactWithOwner | null> {
  if (!isValidId(id)) return null;
  const params: unknown[] = [id];
  const visible = viewer ? projectVisibilitySql("p", viewer, params) : "TRUE";
  const { rows } = await db.query<ArtifactWithOwner>(
    `SELECT ${COLUMNS("a")}, p.id AS "projectId", p.name AS "projectName", p.private AS "projectPrivate"
       FROM artifacts a JOIN builds b ON b.id = a.build_id JOIN projects p ON p.id = b.project_id
      WHERE a.id = $1 AND ${visible}`,
    params,
  );
  return rows[0] ?? null;
}

/** Deletes the rows and returns them, so the caller can remove the stored files. */
export async function deleteArtifactsOfBuild(db: Queryable, buildId: number): Promise<Artifact[]> {
  const { rows } = await db.query<Artifact>(`DELETE FROM artifacts a WHERE a.build_id = $1 RETURNING ${COLUMNS("a")}`, [buildId]);
  return rows;
}
