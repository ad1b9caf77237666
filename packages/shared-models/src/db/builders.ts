// Builders: the slaves the master drives. The token is the slave's bearer secret: only the
// master reads it (listBuildersWithTokens, getBuilderWithToken); everything else gets BuilderPublic.
import type { Queryable } from "./pool.js";
import { isUniqueViolation } from "./pool.js";
import { isLookupName, isValidId } from "./projects.js";
import { notify } from "./listen.js";
import { Channel } from "./channels.js";
import type { BuilderState } from "../states.js";

export interface BuilderPublic {
  id: number;
  name: string;
  url: string;
  architectures: string[];
  info: Record<string, unknown>;
  ready: boolean;
  notReadyReason: string | null;
  enabled: boolean;
  disabledReason: string | null;
  state: BuilderState;
  statusVersion: number | null;
  currentBuildId: number | null;
  lastContactAt: Date | null;
  scanFailures: number;
  failureCount: number;
  createdAt: Date;
}

/** A builder row with its bearer token: only the master reads it, to call the slave. */
export interface BuilderWithToken extends BuilderPublic {
  token: string;
}

const PUBLIC_COLUMNS = `
  b.id, b.name, b.url, b.architectures, b.info, b.ready, b.not_ready_reason AS "notReadyReason", b.enabled,
  b.disabled_reason AS "disabledReason", b.state, b.status_version AS "statusVersion", b.current_build_id AS "currentBuildId",
  b.last_contact_at AS "lastContactAt", b.scan_failures AS "scanFailures", b.failure_count AS "failureCount",
  b.created_at AS "createdAt"`;
const ALL_COLUMNS = `${PUBLIC_COLUMNS}, b.token`;

export class BuilderExistsError extends Error {
  constructor(readonly builderName: string) {
    super(`A builder named ${builderName} already exists; choose another name.`);
    this.name = "BuilderExistsError";
  }
}

export async function addBuilder(db: Queryable, input: { name: string; url: string; token: string }): Promise<BuilderPublic> {
  let row: BuilderPublic;
  try {
    const { rows } = await db.query<BuilderPublic>(
      `INSERT INTO builders AS b (name, url, token) VALUES ($1, $2, $3) RETURNING ${PUBLIC_COLUMNS}`,
      [input.name, input.url, input.token],
    );
    row = rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err, "builders_name_key")) throw new BuilderExistsError(input.name);
    throw err;
  }
  await notify(db, Channel.builders, { id: row.id });
  return row;
}

export async function getBuilderById(db: Queryable, id: number): Promise<BuilderPublic | null> {
  if (!isValidId(id)) return null;
  const { rows } = await db.query<BuilderPublic>(`SELECT ${PUBLIC_COLUMNS} FROM builders b WHERE b.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function getBuilderByName(db: Queryable, name: string): Promise<BuilderPublic | null> {
  if (!isLookupName(name)) return null;
  const { rows } = await db.query<BuilderPublic>(`SELECT ${PUBLIC_COLUMNS} FROM builders b WHERE b.name = $1`, [name]);
  return rows[0] ?? null;
}

/** With the token: for the master only. */
export async function getBuilderWithToken(db: Queryable, id: number): Promise<BuilderWithToken | null> {
  if (!isValidId(id)) return null;
  const { rows } = await db.query<BuilderWithToken>(`SELECT ${ALL_COLUMNS} FROM builders b WHERE b.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function listBuilders(db: Queryable): Promise<BuilderPublic[]> {
  const { rows } = await db.query<BuilderPublic>(`SELECT ${PUBLIC_COLUMNS} FROM builders b ORDER BY b.name`);
  return rows;
}

/** With tokens: for the master only. */
export async function listBuildersWithTokens(db: Queryable): Promise<BuilderWithToken[]> {
  const { rows } = await db.query<BuilderWithToken>(`SELECT ${ALL_COLUMNS} FROM builders b ORDER BY b.name`);
  return rows;
}

/** Enables a builder and forgets its failures. True if it changed anything. */
export async function enableBuilder(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE builders SET enabled = true, disabled_reason = NULL, failure_count = 0, scan_failures = 0
      WHERE id = $1`,
    [id],
  );
  if (!rowCount) return false;
  await notify(db, Channel.builders, { id });
  return true;
}

export async function disableBuilder(db: Queryable, id: number, reason: string): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE builders SET enabled = false, disabled_reason = $2 WHERE id = $1", [id, reason]);
  if (!rowCount) return false;
  await notify(db, Channel.builders, { id });
  return true;
}

/**
 * Records what info() reported. Notifies only when readiness or architectures changed, so a
 * master that calls info() on every wake-up does not wake itself in a loop.
 */
export async function updateBuilderInfo(
  db: Queryable,
  id: number,
  info: { architectures: string[]; info: Record<string, unknown>; ready: boolean; notReadyReason?: string | null },
): Promise<boolean> {
  const { rows } = await db.query<{ changed: boolean }>(
    `UPDATE builders b SET architectures = $2, info = $3, ready = $4, not_ready_reason = $5
       FROM (SELECT architectures, ready FROM builders WHERE id = $1 FOR UPDATE) old
      WHERE b.id = $1
      RETURNING (old.architectures IS DISTINCT FROM $2::text[] OR old.ready IS DISTINCT FROM $4::boolean) AS changed`,
    [id, info.architectures, JSON.stringify(info.info), info.ready, info.ready ? null : (info.notReadyReason ?? null)],
  );
  if (!rows[0]) return false;
  if (rows[0].changed) await notify(db, Channel.builders, { id });
  return true;
}

/**
 * A successful scan: the reported state and status version, the contact time, and the end of
 * any run of scan failures. Notifies only when the state changed ({ id, state, contact: true }).
 */
export async function recordBuilderContact(
  db: Queryable,
  id: number,
  contact: { state: BuilderState; statusVersion: number | null },
): Promise<boolean> {
  const { rows } = await db.query<{ changed: boolean }>(
    `UPDATE builders b SET state = $2, status_version = $3, last_contact_at = now(), scan_failures = 0
       FROM (SELECT state FROM builders WHERE id = $1 FOR UPDATE) old
      WHERE b.id = $1
      RETURNING old.state IS DISTINCT FROM $2::text AS changed`,
    [id, contact.state, contact.statusVersion],
  );
  if (!rows[0]) return false;
  // Marked as the master's own record of an answer, with the state: the master needs neither to
  // re-read the row nor to look for work unless the builder became idle.
  if (rows[0].changed) await notify(db, Channel.builders, { id, state: contact.state, contact: true });
  return true;
}

/** One more failed scan; returns the consecutive count (0 if there is no such builder). */
export async function recordScanFailure(db: Queryable, id: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "UPDATE builders SET scan_failures = scan_failures + 1 WHERE id = $1 RETURNING scan_failures AS n",
    [id],
  );
  return rows[0]?.n ?? 0;
}

/** Sets the observed state without a contact (e.g. OFFLINE after too many scan failures). */
export async function setBuilderState(db: Queryable, id: number, state: BuilderState): Promise<boolean> {
  const { rowCount } = await db.query("UPDATE builders SET state = $2 WHERE id = $1 AND state IS DISTINCT FROM $2", [id, state]);
  if (!rowCount) return false;
  await notify(db, Channel.builders, { id });
  return true;
}

/** Removes a builder; its past builds keep their history with no builder. */
export async function deleteBuilder(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query("DELETE FROM builders WHERE id = $1", [id]);
  if (!rowCount) return false;
  await notify(db, Channel.builders, { id });
  return true;
}
