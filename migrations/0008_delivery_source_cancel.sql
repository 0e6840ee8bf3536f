-- goldgate service schema v8: a client's cancel (POST /api/cancel/<job_id>, service/cancel.py) records RunPod's
-- answer in webhook_deliveries under its own source, 'cancel'. Before, the CHECK refused it, and INSERT OR IGNORE
-- skips a row that fails a CHECK as silently as a duplicate: the cancel's record was lost, and a cancel that lost
-- its race to a webhook was answered `duplicate` instead of `terminal_conflict`.
-- SQLite cannot change a CHECK in place: the table is rebuilt with the same columns, rows and index (the old one is
-- renamed aside, copied, dropped with its index). Nothing references webhook_deliveries, so no foreign key breaks.
-- The copy reads every row once: prune keeps the table small (docs/RUNBOOK.md, D1 retention).

ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_before_v8;
CREATE TABLE webhook_deliveries (
  fingerprint TEXT PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs (id),
  runpod_job_id TEXT,
  runpod_status TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('webhook', 'recover', 'cancel')),
  applied INTEGER NOT NULL CHECK (applied IN (0, 1)),
  outcome TEXT NOT NULL,
  received_at TEXT NOT NULL
);
INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, applied, outcome,
                                received_at)
  SELECT fingerprint, job_id, runpod_job_id, runpod_status, source, applied, outcome, received_at
  FROM webhook_deliveries_before_v8;
DROP TABLE webhook_deliveries_before_v8;
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);
