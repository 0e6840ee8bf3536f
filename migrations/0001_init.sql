-- goldgate service schema v1: jobs, webhook deliveries (the idempotency record), job_metrics.
-- Applied to D1 in the cloud and to the local SQLite, recorded in wrangler's d1_migrations.

CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  stack TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  workflow_version TEXT NOT NULL,
  inputs_json TEXT NOT NULL,
  trace_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN
    ('queued', 'in_progress', 'completed', 'failed', 'cancelled', 'timed_out')),
  runpod_job_id TEXT,
  -- optimistic concurrency: every transition is UPDATE ... WHERE version = <read version>
  version INTEGER NOT NULL DEFAULT 0,
  -- fingerprint of the delivery that made the last transition (ties the batch together)
  last_delivery TEXT,
  error TEXT,
  results_json TEXT,
  worker_timings_json TEXT,
  worker_image_tag TEXT,
  gpu_type TEXT,
  runpod_queue_duration_ms INTEGER,
  runpod_run_duration_ms INTEGER,
  e2e_ms INTEGER,
  cost_estimate_usd REAL,
  created_at TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE INDEX jobs_runpod_job_id ON jobs (runpod_job_id);
CREATE INDEX jobs_created_at ON jobs (created_at);

-- One row per distinct delivery (webhook or recovery status), keyed by its fingerprint:
-- sha256 over job id, RunPod id, status, delayTime, executionTime and a hash of output/error.
CREATE TABLE webhook_deliveries (
  fingerprint TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  runpod_job_id TEXT,
  runpod_status TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('webhook', 'recover')),
  applied INTEGER NOT NULL CHECK (applied IN (0, 1)),
  outcome TEXT NOT NULL,
  received_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

-- Exactly one row per terminal job (the primary key makes a second insert a no-op).
-- No foreign key to jobs: metrics are kept after old jobs are pruned.
CREATE TABLE job_metrics (
  job_id TEXT PRIMARY KEY,
  stack TEXT NOT NULL,
  status TEXT NOT NULL,
  runpod_queue_duration_ms INTEGER,
  runpod_run_duration_ms INTEGER,
  e2e_ms INTEGER,
  worker_image_tag TEXT,
  workflow_version TEXT,
  gpu_type TEXT,
  cost_estimate_usd REAL,
  created_at TEXT NOT NULL
);
CREATE INDEX job_metrics_created_at ON job_metrics (created_at);
-- Covering indexes for service.metrics: each percentile query streams one of them in
-- (tag, value) order, grouping equal values, so 1,000,000 rows need no big sort. The first
-- also covers the per-tag summary (counts by status, cost).
CREATE INDEX job_metrics_tag_e2e ON job_metrics (worker_image_tag, e2e_ms, created_at, status, cost_estimate_usd);
CREATE INDEX job_metrics_tag_queue ON job_metrics (worker_image_tag, runpod_queue_duration_ms, created_at);
CREATE INDEX job_metrics_tag_run ON job_metrics (worker_image_tag, runpod_run_duration_ms, created_at);
