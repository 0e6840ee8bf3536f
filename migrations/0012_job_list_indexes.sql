-- goldgate service schema v12: the indexes GET /api/jobs (service/joblist.py) pages by, newest first, a keyset on
-- (created_at, id): a client's own jobs by (client, created_at, id), every job (the API token's listing) by
-- (created_at, id). Each page reads at most `limit` + 1 entries of one of them, whatever the filters, with no sort.
-- Only columns a job's INSERT fixes: no transition (a webhook's UPDATE of status, updated_at, finished_at, ...)
-- writes to either, so the webhook path does not get slower; each create writes one entry more to each. A `status`
-- filter is applied to the entries a page reads, not by an index (an index on status would be rewritten by every
-- transition). jobs_created_at (0001) stays as it was.

CREATE INDEX IF NOT EXISTS jobs_client_created ON jobs (client, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_created_id ON jobs (created_at, id);
