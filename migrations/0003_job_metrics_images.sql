-- goldgate service schema v3: job_metrics.images, the number of result images a job recorded (0 when it
-- did not complete), written by the transition that ends the job. `goldgate metrics` divides cost by
-- images; read from the jobs row it was lost when `goldgate prune` deleted old jobs but kept their metrics.
-- Rows written before this migration hold NULL: the report counts those from their job's results.
-- No backfill here: one UPDATE over every metrics row could outlast D1's 30 s per query.

ALTER TABLE job_metrics ADD COLUMN images INTEGER;
