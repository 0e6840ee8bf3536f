-- goldgate service schema v2: Idempotency-Key on POST /api/queue/create (service/idempotency.py).
-- One row per key a client sent, per scope (the stack its API token belongs to). The primary key is
-- the arbiter between concurrent duplicates: D1 has no interactive transactions, so the key row and
-- its job are written in one batch, the job only if the key row names it.
-- No foreign key to jobs: the key row is written first in that batch, and old jobs may be pruned.

CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  -- sha256 of the canonical JSON of the request body: the same key with another body is refused
  request_sha256 TEXT NOT NULL,
  job_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, idempotency_key)
);
