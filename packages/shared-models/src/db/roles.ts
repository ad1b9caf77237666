// Database roles for a cluster lexbuilder runs itself (npm start's embedded PostgreSQL): the
// daemons connect as a role that owns the database but is not a superuser. These statements
// run on a superuser's connection; role names and passwords cannot be query parameters in
// DDL, so they are quoted with the client's own escaping.
import pg from "pg";

/** Sets a role's password (the superuser's own, or the owner role's). */
export async function setRolePassword(db: pg.Client, role: string, password: string): Promise<void> {
  await db.query(`ALTER ROLE ${db.escapeIdentifier(role)} PASSWORD ${db.escapeLiteral(password)}`);
}

/** Creates `role` (login, no superuser or other powers) with `password`, or resets its password. */
export async function ensureLoginRole(db: pg.Client, role: string, password: string): Promise<void> {
  const { rowCount } = await db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
  const verb = rowCount ? "ALTER" : "CREATE";
  await db.query(
    `${verb} ROLE ${db.escapeIdentifier(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${db.escapeLiteral(password)}`,
  );
}

/** Creates `database` owned by `owner`, or makes `owner` the owner of the existing one. */
export async function ensureDatabaseOwnedBy(db: pg.Client, database: string, owner: string): Promise<void> {
  const { rowCount } = await db.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
  if (rowCount) await db.query(`ALTER DATABASE ${db.escapeIdentifier(database)} OWNER TO ${db.escapeIdentifier(owner)}`);
  else await db.query(`CREATE DATABASE ${db.escapeIdentifier(database)} OWNER ${db.escapeIdentifier(owner)}`);
}

/**
 * Gives `owner` every table, view, sequence, function and type in the public schema of the
 * database `db` is connected to (made earlier by another role, e.g. by the superuser before the
 * owner role existed). Returns how many objects changed hands; none on later runs.
 */
export async function handOverSchemaObjects(db: pg.Client, owner: string): Promise<number> {
  const { rows } = await db.query<{ statement: string }>(
    `SELECT format('ALTER %s %s OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
              c.oid::regclass, $1::text) AS statement
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        AND pg_get_userbyid(c.relowner) <> $1
        -- A sequence that belongs to a column moves with its table.
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
     UNION ALL
     SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> $1
     UNION ALL
     SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $1::text)
       FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r') AND pg_get_userbyid(t.typowner) <> $1`,
    [owner],
  );
  for (const { statement } of rows) await db.query(statement);
  return rows.length;
}
