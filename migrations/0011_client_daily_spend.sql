-- goldgate service schema v11: each named client's estimated GPU spend of the jobs that ended on each UTC day, for
-- the stack's api.client_daily_spend_limit_usd (service/spend.py): a create on a client's token reads its client's
-- row of the day with the stack's (a primary-key read each, one statement). The batch that writes the metrics row of
-- a job with a client (jobs.client, migration 0010) adds its cost here as it adds it to daily_spend, on the same
-- condition and computed from the rows alike (service/spend.py, client_add_statement): `usd` is the sum of the day's
-- cost_estimate_usd of the client's jobs (a null cost adds 0), `jobs` the client's jobs that ended that day. A job the
-- API token created (client NULL) has no row here. A day is YYYY-MM-DD in UTC.
-- The backfill gives each job of a client the day it finished (jobs.finished_at, written by the service's clock when
-- it ended), else the day it was created; a job `goldgate prune` deleted has no row left naming its client, and is
-- not counted (daily_spend keeps it).

CREATE TABLE client_daily_spend (
  day TEXT NOT NULL,
  client TEXT NOT NULL,
  usd REAL NOT NULL,
  jobs INTEGER NOT NULL,
  PRIMARY KEY (day, client)
);
INSERT INTO client_daily_spend (day, client, usd, jobs)
  SELECT substr(COALESCE(j.finished_at, m.created_at), 1, 10) AS day, j.client,
         TOTAL(CASE WHEN typeof(m.cost_estimate_usd) IN ('integer', 'real') THEN m.cost_estimate_usd END), COUNT(*)
  FROM job_metrics AS m JOIN jobs AS j ON j.id = m.job_id
  WHERE j.client IS NOT NULL
  GROUP BY day, j.client;
