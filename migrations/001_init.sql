-- lexbuilder schema, version 1. Applied in one transaction by lexbuilder-admin migrate.
-- States and kinds must match packages/shared-models/src/states.ts.

CREATE TABLE users (
  id            bigserial PRIMARY KEY,
  name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_.-]{1,31}$'),
  password_hash text NOT NULL,
  role          text NOT NULL CHECK (role IN ('admin', 'builder', 'viewer')),
  active        boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz
);

-- Express sessions (connect-pg-simple's layout).
CREATE TABLE sessions (
  sid    varchar NOT NULL PRIMARY KEY,
  sess   json NOT NULL,
  expire timestamp(6) NOT NULL
);
CREATE INDEX sessions_expire_idx ON sessions (expire);

CREATE TABLE api_tokens (
  id           bigserial PRIMARY KEY,
  user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  label        text NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
  token_hash   text NOT NULL UNIQUE,           -- sha256 hex of the token; the token itself is shown once
  token_prefix text NOT NULL,                  -- first characters, to tell tokens apart in the UI
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE projects (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  title            text NOT NULL DEFAULT '' CHECK (length(title) <= 200),
  description      text NOT NULL DEFAULT '' CHECK (length(description) <= 10000),
  config_url       text NOT NULL CHECK (length(config_url) BETWEEN 1 AND 2000),
  config_ref       text NOT NULL DEFAULT 'main' CHECK (length(config_ref) BETWEEN 1 AND 250),
  architecture     text NOT NULL CHECK (architecture ~ '^[a-z0-9]+$'),
  suite            text NOT NULL DEFAULT 'trixie' CHECK (suite ~ '^[a-z0-9][a-z0-9.-]*$'),
  extra_env        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra_env) = 'object'),
  priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
  active           boolean NOT NULL DEFAULT true,
  private          boolean NOT NULL DEFAULT false,
  -- Daily schedule: either a time of day or a cron expression, in schedule_tz.
  schedule_daily_at time,
  schedule_cron     text CHECK (schedule_cron IS NULL OR length(schedule_cron) <= 100),
  schedule_tz       text NOT NULL DEFAULT 'UTC',
  schedule_last_run timestamptz,
  schedule_next_run timestamptz,
  CHECK (schedule_daily_at IS NULL OR schedule_cron IS NULL),
  -- Retention: NULL means keep forever.
  keep_last        integer CHECK (keep_last IS NULL OR keep_last >= 1),
  keep_days        integer CHECK (keep_days IS NULL OR keep_days >= 1),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE project_members (
  project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);

CREATE TABLE builders (
  id               bigserial PRIMARY KEY,
  name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9.-]{0,62}$'),
  url              text NOT NULL CHECK (url ~ '^https?://'),
  token            text NOT NULL,            -- the slave's bearer token; never rendered
  architectures    text[] NOT NULL DEFAULT '{}',
  info             jsonb NOT NULL DEFAULT '{}',
  ready            boolean NOT NULL DEFAULT false,
  not_ready_reason text,
  enabled          boolean NOT NULL DEFAULT true,
  disabled_reason  text,
  state            text NOT NULL DEFAULT 'UNKNOWN'
                   CHECK (state IN ('UNKNOWN', 'OFFLINE', 'IDLE', 'BUILDING', 'ABORTING', 'WAITING')),
  status_version   integer,
  current_build_id bigint,                   -- FK added below (builds refers to builders too)
  last_contact_at  timestamptz,
  scan_failures    integer NOT NULL DEFAULT 0, -- consecutive failed scans (glitches first)
  failure_count    integer NOT NULL DEFAULT 0, -- counted failures since last enable/success
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE builds (
  id               bigserial PRIMARY KEY,
  project_id       bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  state            text NOT NULL DEFAULT 'QUEUED'
                   CHECK (state IN ('QUEUED', 'DISPATCHING', 'BUILDING', 'COLLECTING',
                                    'SUCCEEDED', 'FAILED', 'CANCELLING', 'CANCELLED')),
  failure_kind     text CHECK (failure_kind IN ('build', 'config', 'builder', 'collect')),
  failure_message  text,
  reason           text NOT NULL CHECK (reason IN ('manual', 'daily', 'api', 'retry', 'milestone')),
  milestone        text CHECK (milestone IS NULL OR length(milestone) BETWEEN 1 AND 100),
  requested_by     bigint REFERENCES users (id) ON DELETE SET NULL,
  priority         integer NOT NULL DEFAULT 0,
  config_ref       text NOT NULL,            -- the ref asked for (project default or a given one)
  config_revision  text,                     -- the commit id the slave resolved
  architecture     text NOT NULL,
  attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  cookie           text,                     -- "<id>-<attempt>" while a slave may hold it
  builder_id       bigint REFERENCES builders (id) ON DELETE SET NULL,
  slave_result     text CHECK (slave_result IN ('OK', 'BUILDFAIL', 'CONFIGFAIL', 'BUILDERFAIL', 'ABORTED')),
  requeue_count    integer NOT NULL DEFAULT 0,
  retry_of         bigint REFERENCES builds (id) ON DELETE SET NULL,
  scheduled_for    timestamptz,
  log_size         bigint NOT NULL DEFAULT 0,
  artifact_dir     text,                     -- relative to the artifacts dir
  requested_at     timestamptz NOT NULL DEFAULT now(),
  dispatched_at    timestamptz,
  started_at       timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((state = 'FAILED') = (failure_kind IS NOT NULL)),
  CHECK (reason <> 'milestone' OR milestone IS NOT NULL),
  UNIQUE (project_id, scheduled_for)
);
CREATE INDEX builds_queue_idx ON builds (priority DESC, requested_at, id) WHERE state = 'QUEUED';
CREATE INDEX builds_active_idx ON builds (state) WHERE state IN ('DISPATCHING', 'BUILDING', 'COLLECTING', 'CANCELLING');
CREATE INDEX builds_project_idx ON builds (project_id, id DESC);
CREATE INDEX builds_list_idx ON builds (id DESC);
CREATE INDEX builds_state_idx ON builds (state, id DESC);
CREATE INDEX builds_builder_idx ON builds (builder_id, id DESC);
CREATE INDEX builds_finished_idx ON builds (project_id, finished_at DESC) WHERE state = 'SUCCEEDED';
-- A second identical queued request is refused.
CREATE UNIQUE INDEX builds_one_identical_queued_idx
  ON builds (project_id, config_ref, coalesce(milestone, ''))
  WHERE state = 'QUEUED';

ALTER TABLE builders
  ADD CONSTRAINT builders_current_build_fk FOREIGN KEY (current_build_id) REFERENCES builds (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX builders_current_build_uniq ON builders (current_build_id) WHERE current_build_id IS NOT NULL;

CREATE TABLE artifacts (
  id          bigserial PRIMARY KEY,
  build_id    bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$'),
  kind        text NOT NULL CHECK (kind IN ('image', 'manifest', 'files', 'contents', 'log', 'other')),
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size        bigint NOT NULL CHECK (size >= 0),
  stored_path text NOT NULL,                 -- relative to the artifacts dir
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (build_id, name)
);

-- Append-only log chunks; offset = byte offset of the chunk in the whole log.
CREATE TABLE build_log_chunks (
  build_id   bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
  byte_offset bigint NOT NULL CHECK (byte_offset >= 0),
  data       bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (build_id, byte_offset)
);

CREATE TABLE manifest_entries (
  build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
  package  text NOT NULL,
  version  text NOT NULL,
  PRIMARY KEY (build_id, package)
);
CREATE INDEX manifest_entries_package_idx ON manifest_entries (package, version, build_id);

CREATE TABLE audit_log (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  user_id    bigint REFERENCES users (id) ON DELETE SET NULL,
  actor      text NOT NULL,                  -- user name, 'master', 'admin-cli', 'scheduler'
  action     text NOT NULL,                  -- e.g. 'build.request', 'project.update'
  object_type text NOT NULL,
  object_id  text,
  details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id);
