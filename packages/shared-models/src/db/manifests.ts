// Package manifests: which package versions an image contains, parsed from live-build's
// live-image-<arch>.packages, stored per build so diffs and "which builds have P" are queries.
import type { Queryable } from "./pool.js";
import { clampLimit, isValidId, projectVisibilitySql, type Viewer } from "./projects.js";

export interface ManifestEntry {
  package: string;
  version: string;
}

export interface ManifestLineError {
  /** 1-based line number. */
  line: number;
  text: string;
  reason: string;
}

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]*$/;
const ARCH_NAME = /^[a-z0-9][a-z0-9-]*$/;
// Debian versions: [epoch:]upstream[-revision]; we check the character set, not the grammar.
const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+~:_-]*$/;

/**
 * Parses `name<TAB>version` lines (dpkg-query -W). Blank lines are skipped; a `name:arch`
 * qualifier (multi-arch) is dropped, except when two architectures of one package are present,
 * where both keep their qualified names. Nothing is dropped silently: every line that is not
 * an entry is returned in `errors` with its reason.
 */
export function parseManifest(text: string): { entries: ManifestEntry[]; errors: ManifestLineError[] } {
  const errors: ManifestLineError[] = [];
  const parsed: { base: string; qualified: string; version: string; line: number; text: string }[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const textLine = raw.replace(/\r$/, "");
    if (textLine.trim() === "") return;
    const fields = textLine.includes("\t") ? textLine.split("\t").map((f) => f.trim()) : textLine.trim().split(/\s+/);
    const line = i + 1;
    if (fields.length !== 2 || !fields[0] || !fields[1]) {
      errors.push({ line, text: textLine, reason: "expected a package name and a version separated by a tab" });
      return;
    }
    const [name, version] = fields as [string, string];
    const colon = name.indexOf(":");
    const base = colon === -1 ? name : name.slice(0, colon);
    const arch = colon === -1 ? null : name.slice(colon + 1);
    if (!PACKAGE_NAME.test(base) || (arch !== null && !ARCH_NAME.test(arch))) {
      errors.push({ line, text: textLine, reason: `"${name}" is not a Debian package name` });
      return;
    }
    if (!VERSION.test(version)) {
      errors.push({ line, text: textLine, reason: `"${version}" is not a Debian version` });
      return;
    }
    parsed.push({ base, qualified: name, version, line, text: textLine });
  });
  const archsOf = new Map<string, Set<string>>();
  for (const p of parsed) {
    const set = archsOf.get(p.base) ?? new Set<string>();
    set.add(p.qualified);
    archsOf.set(p.base, set);
  }
  const seen = new Map<string, number>();
  const entries: ManifestEntry[] = [];
  for (const p of parsed) {
    const name = (archsOf.get(p.base)?.size ?? 0) > 1 ? p.qualified : p.base;
    const first = seen.get(name);
    if (first !== undefined) {
      errors.push({ line: p.line, text: p.text, reason: `package ${name} is listed again (first on line ${first})` });
      continue;
    }
    seen.set(name, p.line);
    entries.push({ package: name, version: p.version });
  }
  errors.sort((a, b) => a.line - b.line);
  return { entries, errors };
}

/**
 * Stores a build's manifest, replacing whatever was stored for it before (a re-collection is
 * idempotent). One statement. Duplicate package names are an error (parseManifest removes them).
 */
export async function insertManifest(db: Queryable, buildId: number, entries: ManifestEntry[]): Promise<number> {
  const names = entries.map((e) => e.package);
  if (new Set(names).size !== names.length) throw new Error("A manifest lists a package twice; parse it with parseManifest first.");
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (DELETE FROM manifest_entries WHERE build_id = $1 AND NOT (package = ANY($2::text[])))
     , put AS (
       INSERT INTO manifest_entries (build_id, package, version)
       SELECT $1, e.package, e.version FROM unnest($2::text[], $3::text[]) AS e(package, version)
       ON CONFLICT (build_id, package) DO UPDATE SET version = EXCLUDED.version
       RETURNING 1)
     SELECT count(*)::int AS n FROM put`,
    [buildId, names, entries.map((e) => e.version)],
  );
  return rows[0]?.n ?? 0;
}

export async function getManifest(db: Queryable, buildId: number): Promise<ManifestEntry[]> {
  const { rows } = await db.query<ManifestEntry>(
    `SELECT package, version FROM manifest_entries WHERE build_id = $1 ORDER BY package COLLATE "C"`,
    [buildId],
  );
  return rows;
}

export interface ManifestDiff {
  added: ManifestEntry[];
  removed: ManifestEntry[];
  changed: { package: string; from: string; to: string }[];
}

/** What changed from one build's manifest to another's, each list sorted by package. */
export async function diffManifests(db: Queryable, fromBuildId: number, toBuildId: number): Promise<ManifestDiff> {
  const { rows } = await db.query<{ package: string; from: string | null; to: string | null }>(
    `SELECT coalesce(f.package, t.package) AS package, f.version AS "from", t.version AS "to"
       FROM (SELECT package, version FROM manifest_entries WHERE build_id = $1) f
       FULL JOIN (SELECT package, version FROM manifest_entries WHERE build_id = $2) t ON t.package = f.package
      WHERE f.version IS DISTINCT FROM t.version
      ORDER BY coalesce(f.package, t.package) COLLATE "C"`,
    [fromBuildId, toBuildId],
  );
  const diff: ManifestDiff = { added: [], removed: [], changed: [] };
  for (const r of rows) {
    if (r.from === null) diff.added.push({ package: r.package, version: r.to! });
    else if (r.to === null) diff.removed.push({ package: r.package, version: r.from });
    else diff.changed.push({ package: r.package, from: r.from, to: r.to });
  }
  return diff;
}

export interface PackageSearchHit {
  buildId: number;
  projectName: string;
  version: string;
  state: string;
  milestone: string | null;
  finishedAt: Date | null;
}

/**
 * Builds (visible to the viewer) whose manifest has `package` (at `version`, if given), newest
 * first. Uses the (package, version, build_id) index. At most 500.
 */
export async function searchPackages(
  db: Queryable,
  options: { viewer: Viewer; package: string; version?: string; limit?: number; before?: number | null },
): Promise<PackageSearchHit[]> {
  const params: unknown[] = [options.package];
  const where = ["m.package = $1", projectVisibilitySql("p", options.viewer, params)];
  if (options.version !== undefined && options.version !== "") {
    params.push(options.version);
    where.push(`m.version = $${params.length}`);
  }
  if (options.before !== undefined && options.before !== null) {
    if (!isValidId(options.before)) return [];
    params.push(options.before);
    where.push(`m.build_id < $${params.length}`);
  }
  params.push(clampLimit(options.limit, 100, 500));
  const { rows } = await db.query<PackageSearchHit>(
    `SELECT m.build_id AS "buildId", p.name AS "projectName", m.version, b.state, b.milestone, b.finished_at AS "finishedAt"
       FROM manifest_entries m JOIN builds b ON b.id = m.build_id JOIN projects p ON p.id = b.project_id
      WHERE ${where.join(" AND ")}
      ORDER BY m.build_id DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}

// --- Added by the webapp: the build page shows only how many packages there are. ---

/** How many packages a build's manifest lists (uses the primary key). */
export async function countManifest(db: Queryable, buildId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM manifest_entries WHERE build_id = $1", [buildId]);
  return rows[0]?.n ?? 0;
}
