-- goldgate service schema v10: the named client whose token created a job (service/clients.py), NULL for a job the
-- API token created, and for every job from before. `goldgate cancel --all-queued --client <name>` selects by it; its
-- jobs are the queued ones, read by the in-flight index (migration 0007) first, so the column needs no index of its
-- own. ADD COLUMN of a nullable column rewrites no row.

ALTER TABLE jobs ADD COLUMN client TEXT;
