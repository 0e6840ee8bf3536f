-- goldgate service schema v7: the jobs still in flight, which every create counts against the stack's cap
-- (api.max_jobs_in_flight, service/jobs.py). A partial index: only queued and in_progress jobs are in it (the
-- UPDATE that finishes a job takes it out), by creation time, with the run policy and the status beside it
-- (SQLite checks the status again: without it, each entry costs a read of its row). The count reads the index
-- alone, from the oldest creation time a job can still be alive at: the stuck jobs before it are never read.
-- Without it, each create would read every job row (D1 bills each row read).
-- IF NOT EXISTS: a database that has it already is left as it is.

CREATE INDEX IF NOT EXISTS jobs_in_flight
  ON jobs (created_at_ms, policy_ttl_ms, run_timeout_ms, status) WHERE status IN ('queued', 'in_progress');
