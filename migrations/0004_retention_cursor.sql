-- goldgate service schema v4: where the scheduled prune's walk over old jobs stopped (service/retention.py).
-- A Cron Trigger run stops at its statement budget; the next one carries on from here, not from the oldest
-- job, so thousands of stuck (queued, in-progress) old jobs, kept for `recover`, cannot take every run's
-- budget before it reaches the finished jobs after them. Each run walks the old jobs round, back to where it
-- began, so any position is safe: runs that overlap, or a position a Time Travel restore brought back.
-- One row per walk; a table of its own so that no webhook transition writes more for it.

CREATE TABLE retention_cursor (
  walk TEXT PRIMARY KEY,
  -- the created_at the walk has reached: the jobs created up to it were pruned, or kept, on its last pass
  reached TEXT NOT NULL
);
