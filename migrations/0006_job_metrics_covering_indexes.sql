-- goldgate service schema v6: the covering indexes service.metrics streams job_metrics through, for the
-- databases that ran 0001_init.sql before those indexes were added to it (goldgate before c0f9c48,
-- 2026-11-28). An applied migration never runs again, so such a database records every migration and has
-- none of the three: each percentile query of `goldgate metrics` and GET /api/metrics then sorts the whole
-- table (minutes at 300,000 rows, against about a second with them).
-- IF NOT EXISTS: a database that has them already is left as it is.

CREATE INDEX IF NOT EXISTS job_metrics_tag_e2e
  ON job_metrics (worker_image_tag, e2e_ms, created_at, status, cost_estimate_usd);
CREATE INDEX IF NOT EXISTS job_metrics_tag_queue
  ON job_metrics (worker_image_tag, runpod_queue_duration_ms, created_at);
CREATE INDEX IF NOT EXISTS job_metrics_tag_run
  ON job_metrics (worker_image_tag, runpod_run_duration_ms, created_at);
