-- goldgate service schema v5: what RunPod was told when the job was sent, so a recovery computes the job's own
-- deadline (service/recover.py): `policy_ttl_ms` is the policy.ttl sent with its /run, `run_timeout_ms` the /run
-- call's timeout then in force (how late /run may have reached RunPod). A later StackSpec change to either no
-- longer moves the deadline of jobs already at RunPod: with the service's current, lower ttl, a recovery would
-- record failed a job RunPod may still run.
-- Rows written before this migration hold NULL: their deadline uses the service's current config, as before.
-- No backfill here: one UPDATE over every job row could outlast D1's 30 s per query.

ALTER TABLE jobs ADD COLUMN policy_ttl_ms INTEGER;
ALTER TABLE jobs ADD COLUMN run_timeout_ms INTEGER;
