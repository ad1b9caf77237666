-- An API client that lost the answer to "request a build" sends the same request again with the
-- same Idempotency-Key header; the key, scoped to the requesting user, makes the second request
-- return the first build instead of queueing another.
ALTER TABLE builds ADD COLUMN idempotency_key text
  CHECK (idempotency_key IS NULL OR idempotency_key ~ '^[!-~]{1,200}$');
CREATE UNIQUE INDEX builds_idempotency_key_idx ON builds (requested_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
