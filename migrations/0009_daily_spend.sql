-- goldgate service schema v9: the estimated GPU spend of the jobs that ended on each UTC day, for the stack's
-- api.daily_spend_limit_usd (service/spend.py): a create reads its day's row (one primary-key read) instead of
-- summing job_metrics. Every statement that writes a job's metrics row adds its cost here in the same batch
-- (service/spend.py, spend_statement): `usd` is the sum of the day's cost_estimate_usd (a null cost adds 0), `jobs`
-- the jobs that ended that day. A day is YYYY-MM-DD in UTC. One row a day: a table of its own, kept by prune (tiny).
-- The backfill gives each job the day it finished (jobs.finished_at, written by the service's clock when it ended);
-- a job whose row `goldgate prune` deleted keeps only its metrics row, and counts on the day it was created
-- (job_metrics.created_at: a job lives minutes, so almost always the same day).

CREATE TABLE daily_spend (
  day TEXT PRIMARY KEY,
  usd REAL NOT NULL,
  jobs INTEGER NOT NULL
);
INSERT INTO daily_spend (day, usd, jobs)
  SELECT substr(COALESCE(j.finished_at, m.created_at), 1, 10) AS day,
         TOTAL(CASE WHEN typeof(m.cost_estimate_usd) IN ('integer', 'real') THEN m.cost_estimate_usd END), COUNT(*)
  FROM job_metrics AS m LEFT JOIN jobs AS j ON j.id = m.job_id
  GROUP BY day;
