-- The webapp keeps sessions, users, API tokens and rendered pages in memory (packages/webapp,
-- "Benchmark"). Every write that can change what those caches hold notifies the channel
-- lexbuilder_cache, from triggers, so no writer (console, master, admin CLI, a second webapp,
-- psql) can forget to. Payloads (JSON):
--   {"t":"data"}                 something a page shows changed: drop every cached page
--   {"t":"log","ids":[n,...]}    only the log size of these builds moved (log appends)
--   {"t":"user","id":n}          a user was added, renamed, re-roled, (de)activated, got a new
--                                password or was deleted: drop their sessions, tokens and pages
--   {"t":"sessions","h":[...]}   these sessions (sha256 hex of the sid) changed or ended
--   {"t":"sessions"}             many sessions changed (e.g. the expiry sweep): drop them all
--   {"t":"tokens"}               an API token was revoked or deleted
-- The master's channels (lexbuilder_builds, lexbuilder_projects, ...) are left alone: it reloads
-- its scheduler on lexbuilder_projects, and its own schedule writes would wake it again.

CREATE FUNCTION lexbuilder_cache_notify_data() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lexbuilder_cache', '{"t":"data"}');
  RETURN NULL;
END $$;

-- Builds: a statement that moved only log_size (appendLog, deleteLog) concerns the pages of
-- those builds alone; anything else (a new build, a state change, retention) every page.
CREATE FUNCTION lexbuilder_cache_notify_builds() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  ids bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT count(*) INTO n FROM (SELECT 1 FROM new_rows LIMIT 1) s;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT count(*) INTO n FROM (SELECT 1 FROM old_rows LIMIT 1) s;
  ELSE
    SELECT count(*) INTO n FROM (SELECT 1 FROM new_rows LIMIT 51) s;
  END IF;
  IF n = 0 THEN
    RETURN NULL; -- a guarded update that matched nothing changed nothing
  END IF;
  -- Nested, not ANDed: old_rows exists (and may be planned) only in an UPDATE.
  IF TG_OP = 'UPDATE' AND n <= 50 THEN
    IF NOT EXISTS (SELECT 1 FROM new_rows nr JOIN old_rows o ON o.id = nr.id
                    WHERE (to_jsonb(nr) - 'log_size') IS DISTINCT FROM (to_jsonb(o) - 'log_size')) THEN
      SELECT array_agg(id ORDER BY id) INTO ids FROM new_rows;
      PERFORM pg_notify('lexbuilder_cache', json_build_object('t', 'log', 'ids', ids)::text);
      RETURN NULL;
    END IF;
  END IF;
  PERFORM pg_notify('lexbuilder_cache', '{"t":"data"}');
  RETURN NULL;
END $$;

CREATE TRIGGER builds_cache_insert AFTER INSERT ON builds REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_builds();
CREATE TRIGGER builds_cache_update AFTER UPDATE ON builds REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_builds();
CREATE TRIGGER builds_cache_delete AFTER DELETE ON builds REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_builds();

-- What the project, build and list pages show besides builds.
CREATE TRIGGER projects_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON projects
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_data();
CREATE TRIGGER project_members_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON project_members
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_data();
CREATE TRIGGER artifacts_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON artifacts
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_data();
CREATE TRIGGER manifest_entries_cache AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON manifest_entries
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_data();
-- Builder names appear on build pages; their state and heartbeats do not (those pages are not cached).
CREATE TRIGGER builders_cache_rename AFTER UPDATE OF name ON builders
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION lexbuilder_cache_notify_data();
CREATE TRIGGER builders_cache_delete AFTER DELETE ON builders
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_data();

CREATE FUNCTION lexbuilder_cache_notify_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lexbuilder_cache', json_build_object('t', 'user', 'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
  RETURN NULL;
END $$;

-- last_login_at (written at every login) changes nothing a cache holds.
CREATE TRIGGER users_cache_insert AFTER INSERT ON users
  FOR EACH ROW EXECUTE FUNCTION lexbuilder_cache_notify_user();
CREATE TRIGGER users_cache_update AFTER UPDATE ON users
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.role IS DISTINCT FROM NEW.role OR OLD.active IS DISTINCT FROM NEW.active
                     OR OLD.password_hash IS DISTINCT FROM NEW.password_hash OR OLD.id IS DISTINCT FROM NEW.id)
  EXECUTE FUNCTION lexbuilder_cache_notify_user();
CREATE TRIGGER users_cache_delete AFTER DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION lexbuilder_cache_notify_user();

-- Sessions: named by the sha256 of their id (the id itself is a bearer secret), up to 50 per
-- statement; a larger statement (the expiry sweep) says "all".
CREATE FUNCTION lexbuilder_cache_notify_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  hashes text[];
BEGIN
  IF TG_OP = 'DELETE' THEN
    SELECT count(*), array_agg(encode(sha256(convert_to(sid, 'UTF8')), 'hex')) INTO n, hashes FROM (SELECT sid FROM old_rows LIMIT 51) s;
  ELSE
    SELECT count(*), array_agg(encode(sha256(convert_to(sid, 'UTF8')), 'hex')) INTO n, hashes FROM (SELECT sid FROM new_rows LIMIT 51) s;
  END IF;
  IF n = 0 THEN
    RETURN NULL;
  ELSIF n > 50 THEN
    PERFORM pg_notify('lexbuilder_cache', '{"t":"sessions"}');
  ELSE
    PERFORM pg_notify('lexbuilder_cache', json_build_object('t', 'sessions', 'h', hashes)::text);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER sessions_cache_update AFTER UPDATE ON sessions REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_sessions();
CREATE TRIGGER sessions_cache_delete AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_sessions();

CREATE FUNCTION lexbuilder_cache_notify_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lexbuilder_cache', '{"t":"tokens"}');
  RETURN NULL;
END $$;

CREATE TRIGGER api_tokens_cache_revoke AFTER UPDATE ON api_tokens
  FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
  EXECUTE FUNCTION lexbuilder_cache_notify_tokens();
CREATE TRIGGER api_tokens_cache_delete AFTER DELETE ON api_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION lexbuilder_cache_notify_tokens();
