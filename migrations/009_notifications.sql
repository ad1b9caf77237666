-- Notifications: webhooks, mail subscriptions and the outbox both are sent from.
--
-- A trigger on builds writes an outbox event in the same transaction as the state change that
-- causes it, so an event exists exactly when its change committed: nothing is lost when the
-- master dies between the change and the send. The master turns each event into deliveries (one
-- per webhook or mail recipient, each with a UUID kept across retries) and sends them off the
-- dispatch path.

ALTER TABLE users ADD COLUMN email text
  CHECK (email IS NULL OR (length(email) BETWEEN 3 AND 254 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'));

CREATE TABLE webhooks (
  id          bigserial PRIMARY KEY,
  -- NULL: a farm-wide hook (administrators'), for builder.disabled and every project's events.
  project_id  bigint REFERENCES projects (id) ON DELETE CASCADE,
  url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
  -- Kept as given: the master signs every delivery with it. Never shown after creation.
  secret      text NOT NULL CHECK (length(secret) BETWEEN 16 AND 256),
  events      text[] NOT NULL CHECK (cardinality(events) >= 1 AND events <@ ARRAY[
                'build.queued', 'build.started', 'build.succeeded', 'build.failed', 'build.cancelled',
                'release.published', 'builder.disabled']::text[]),
  format      text NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
  active      boolean NOT NULL DEFAULT true,
  created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_project_idx ON webhooks (project_id);

CREATE TABLE subscriptions (
  user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  mode       text NOT NULL CHECK (mode IN ('all', 'changes', 'releases')),
  PRIMARY KEY (user_id, project_id)
);
CREATE INDEX subscriptions_project_idx ON subscriptions (project_id);

CREATE TABLE outbox_events (
  id           bigserial PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN (
                 'build.queued', 'build.started', 'build.succeeded', 'build.failed', 'build.cancelled',
                 'release.published', 'builder.disabled', 'webhook.test')),
  project_id   bigint REFERENCES projects (id) ON DELETE CASCADE,
  build_id     bigint REFERENCES builds (id) ON DELETE CASCADE,
  builder_id   bigint REFERENCES builders (id) ON DELETE CASCADE,
  -- Only for webhook.test: the one hook it goes to.
  webhook_id   bigint REFERENCES webhooks (id) ON DELETE CASCADE,
  -- What the event knew when it happened (state, attempt, failure); the rest is read at fan-out.
  facts        jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  fanned_out_at timestamptz
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (id) WHERE fanned_out_at IS NULL;
CREATE INDEX outbox_events_build_idx ON outbox_events (build_id);

CREATE TABLE notification_deliveries (
  -- Sent as X-Lexbuilder-Delivery, the same on every retry so receivers can de-duplicate.
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event_id        bigint NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
  channel         text NOT NULL CHECK (channel IN ('webhook', 'mail')),
  webhook_id      bigint REFERENCES webhooks (id) ON DELETE CASCADE,
  user_id         bigint REFERENCES users (id) ON DELETE CASCADE,
  -- Rendered once at fan-out, so every retry sends the same bytes (and the same signature).
  subject         text,
  body            text NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  CHECK ((channel = 'webhook') = (webhook_id IS NOT NULL)),
  CHECK ((channel = 'mail') = (user_id IS NOT NULL))
);
CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notification_deliveries_webhook_idx ON notification_deliveries (webhook_id, created_at DESC);

CREATE TABLE delivery_attempts (
  id           bigserial PRIMARY KEY,
  delivery_id  uuid NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  status_code  integer,
  duration_ms  integer NOT NULL,
  response_snippet text,
  error        text
);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, attempt);

-- One event per build state a person cares about. A claim (QUEUED → DISPATCHING) writes none,
-- so a burst of claims costs nothing here.
CREATE FUNCTION lexbuilder_build_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text := CASE NEW.state
    WHEN 'QUEUED' THEN 'build.queued'
    WHEN 'BUILDING' THEN 'build.started'
    WHEN 'SUCCEEDED' THEN 'build.succeeded'
    WHEN 'FAILED' THEN 'build.failed'
    WHEN 'CANCELLED' THEN 'build.cancelled'
  END;
  facts jsonb := jsonb_build_object('state', NEW.state, 'attempt', NEW.attempt,
    'failureKind', NEW.failure_kind, 'builderId', NEW.builder_id);
BEGIN
  INSERT INTO outbox_events (kind, project_id, build_id, facts) VALUES (kind, NEW.project_id, NEW.id, facts);
  IF NEW.state = 'SUCCEEDED' AND NEW.reason = 'milestone' THEN
    INSERT INTO outbox_events (kind, project_id, build_id, facts)
    VALUES ('release.published', NEW.project_id, NEW.id, facts || jsonb_build_object('milestone', NEW.milestone));
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER builds_outbox_on_insert AFTER INSERT ON builds
  FOR EACH ROW EXECUTE FUNCTION lexbuilder_build_outbox();
-- A build given back to the queue is not queued anew for its watchers: only the first QUEUED counts.
CREATE TRIGGER builds_outbox_on_state AFTER UPDATE OF state ON builds
  FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('BUILDING', 'SUCCEEDED', 'FAILED', 'CANCELLED'))
  EXECUTE FUNCTION lexbuilder_build_outbox();

-- A builder switched off (by an administrator or by the master after repeated failures).
CREATE FUNCTION lexbuilder_builder_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox_events (kind, builder_id, facts)
  VALUES ('builder.disabled', NEW.id, jsonb_build_object('name', NEW.name, 'reason', NEW.disabled_reason));
  RETURN NULL;
END $$;
CREATE TRIGGER builders_outbox_on_disable AFTER UPDATE OF enabled ON builders
  FOR EACH ROW WHEN (OLD.enabled AND NOT NEW.enabled)
  EXECUTE FUNCTION lexbuilder_builder_outbox();

-- What the master tells the console about its own configuration (whether mail is set up), so
-- the console can say so without reading the master's environment.
CREATE TABLE master_facts (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  value      jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
