"""The jobs table: a job's record from creation to its terminal state, and its public status view."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from service import spend
from service.http import ApiError
from service.logs import rfc3339_ms
from service.ports import Database, Statement

TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "timed_out")
JOB_ID = re.compile(r"^[0-9a-f]{32}\Z")  # \Z: $ also matches before a final newline (a "%0A" in a query)


iso_ms = rfc3339_ms  # UTC RFC 3339 with milliseconds and Z: sorts lexically in time order, as SQL compares it


@dataclass(frozen=True)
class NewJob:
    id: str
    stack: str
    workflow_id: str
    workflow_version: str
    inputs: dict[str, Any]
    trace_id: str
    created_at_s: float
    worker_image_tag: str | None  # the stack's pinned tag; the worker's own report replaces it
    # What the job's recovery deadline depends on (service/recover.py): the policy.ttl sent with its /run, and the
    # /run call's timeout. None: not recorded (as in rows from before migration 0005), the current config counts.
    policy_ttl_ms: int | None = None
    run_timeout_ms: int | None = None
    # The stack's api.max_jobs_in_flight: the job is written only while fewer jobs are in flight (QueueFull).
    # None: no cap (a test's or a bench's own inserts).
    max_in_flight: int | None = None
    # The named client whose token created it (service/clients.py); None: the API token (migration 0010).
    client: str | None = None


# A job is one D1 row, and D1 refuses a row over 2,000,000 bytes: its inputs get half of it; the rest is
# its results, timings and error.
MAX_INPUTS_JSON_BYTES = 1_000_000


def _inputs_json(inputs: dict[str, Any]) -> str:
    return json.dumps(inputs, separators=(",", ":"), sort_keys=True)  # ASCII: one byte a character


def check_inputs_size(inputs: dict[str, Any]) -> None:
    """A 413 for inputs too large to record, before anything is written or sent to RunPod."""
    size = len(_inputs_json(inputs))
    if size > MAX_INPUTS_JSON_BYTES:
        raise ApiError(413, "inputs_too_large", f"inputs are {size} bytes as JSON; a job's inputs may be at most "
                                                f"{MAX_INPUTS_JSON_BYTES}: send large data (e.g. images) by URL")


_COLUMNS = ("id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, worker_image_tag, created_at, "
            "created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms")
_VALUES = "?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?"
# A named client's job also records its client (migration 0010); the API token's insert stays the one it always was.
_INSERTS = {False: (f"INSERT INTO jobs ({_COLUMNS}) ", _VALUES),
            True: (f"INSERT INTO jobs ({_COLUMNS}, client) ", f"{_VALUES}, ?")}

# The lifetime rule's bounds, one copy for both its forms (this SQL, transitions.lifetime_ms in Python). RunPod deletes
# a job policy.ttl after it was sent (7 days at most: the bound for a job recorded before migration 0005, which kept
# no ttl); a /run call's timeout is at most an hour (service.config's runpod_timeout_s: a longer one recorded by hand
# counts as an hour); then the /run call and the webhook's retries.
MAX_POLICY_TTL_MS = 7 * 24 * 3600 * 1000
MAX_RUN_TIMEOUT_MS = 3_600_000
LIFETIME_SLACK_MS = 600_000
# In flight: queued or in_progress, and created within its own lifetime (transitions.lifetime_ms, in SQL: its
# policy.ttl, 7 days when none was recorded, plus its /run timeout and 10 minutes). A job whose webhook was lost
# long ago (`goldgate stuck` lists it) no longer holds a place once no RunPod job can run for it any more.
# Read from migration 0007's partial index alone: the terms below repeat its WHERE as SQLite needs to use it.
_LIFETIME_SQL = (f"CASE WHEN typeof(policy_ttl_ms) = 'integer' AND policy_ttl_ms > 0 "
                 f"AND policy_ttl_ms <= {MAX_POLICY_TTL_MS} THEN policy_ttl_ms ELSE {MAX_POLICY_TTL_MS} END "
                 f"+ CASE WHEN typeof(run_timeout_ms) = 'integer' AND run_timeout_ms > 0 "
                 f"THEN MIN(run_timeout_ms, {MAX_RUN_TIMEOUT_MS}) ELSE 0 END + {LIFETIME_SLACK_MS}")
# The longest any job lives: the index is read from now less this on (the stuck jobs before it are never read).
MAX_LIFETIME_MS = MAX_POLICY_TTL_MS + MAX_RUN_TIMEOUT_MS + LIFETIME_SLACK_MS
# At most `cap` rows are read: a cap lowered below the jobs already in flight costs no more than the cap.
_IN_FLIGHT = ("SELECT 1 FROM jobs WHERE status IN ('queued', 'in_progress') AND created_at_ms > ? "
              f"AND created_at_ms + {_LIFETIME_SQL} > ? LIMIT ?")
# The job's INSERT admits it only while fewer than the cap are in flight: the count and the write are one statement,
# so two creates at the cap less one cannot both pass it (D1 runs a database's statements one at a time; SQLite
# takes its write lock before the statement reads).
_ADMITTED = f"(SELECT COUNT(*) FROM ({_IN_FLIGHT})) < ?"
QUEUE_FULL_RETRY_AFTER_S = 30  # a GPU job takes seconds to minutes: a few of them end meanwhile


class QueueFull(ApiError):
    """The stack has `cap` jobs in flight already: the job was not written (and not sent to RunPod)."""

    def __init__(self, cap: int) -> None:
        super().__init__(429, "queue_full", f"{cap} jobs are already queued or running on this stack, its most "
                                            "(api.max_jobs_in_flight); this job was not created: retry in "
                                            f"{QUEUE_FULL_RETRY_AFTER_S} s, once some have finished",
                         retry_after=str(QUEUE_FULL_RETRY_AFTER_S))
        self.cap = cap


def in_flight_statement(now_s: float, cap: int) -> Statement:
    """The jobs in flight at `now_s`, counted up to `cap`: one row, `in_flight`."""
    now_ms = int(now_s * 1000)
    return Statement(f"SELECT COUNT(*) AS in_flight FROM ({_IN_FLIGHT})", (now_ms - MAX_LIFETIME_MS, now_ms, cap))


def insert_statement(job: NewJob, held_by: tuple[str, str] | None = None) -> Statement:
    """The job's INSERT; with `held_by` (scope, idempotency key) only if that key row names this job
    (service/idempotency.py writes the key row first, in the same batch); with the job's `max_in_flight` only
    while fewer jobs than that are in flight. Either refusal writes nothing: its changes are 0."""
    now = iso_ms(job.created_at_s)
    now_ms = int(job.created_at_s * 1000)
    params = (job.id, job.stack, job.workflow_id, job.workflow_version, _inputs_json(job.inputs), job.trace_id,
              job.worker_image_tag, now, now_ms, now, job.policy_ttl_ms, job.run_timeout_ms)
    if job.client is not None:
        params = (*params, job.client)
    conditions: list[str] = []
    if held_by is not None:
        conditions.append("EXISTS (SELECT 1 FROM idempotency_keys WHERE scope = ? AND idempotency_key = ? "
                          "AND job_id = ?)")
        params = (*params, *held_by, job.id)
    if job.max_in_flight is not None:
        conditions.append(_ADMITTED)
        params = (*params, now_ms - MAX_LIFETIME_MS, now_ms, job.max_in_flight, job.max_in_flight)
    insert, values = _INSERTS[job.client is not None]
    if not conditions:
        return Statement(insert + f"VALUES ({values})", params)
    return Statement(insert + f"SELECT {values} WHERE " + " AND ".join(conditions), params)


async def insert(db: Database, job: NewJob) -> None:
    """Write the job; QueueFull when its cap (`max_in_flight`) is reached, with nothing written."""
    statement = insert_statement(job)
    if not await db.execute(statement.sql, statement.params) and job.max_in_flight is not None:
        raise QueueFull(job.max_in_flight)


async def get(db: Database, job_id: str) -> dict[str, Any] | None:
    rows = await db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
    return rows[0] if rows else None


async def record_runpod_id(db: Database, job_id: str, runpod_job_id: str, now_s: float) -> None:
    # A fast webhook may already have recorded the id (COALESCE in the transition): keep it.
    await db.execute("UPDATE jobs SET runpod_job_id = ?, updated_at = ? WHERE id = ? AND runpod_job_id IS NULL",
                     (runpod_job_id, iso_ms(now_s), job_id))


async def fail_submission(db: Database, job: dict[str, Any], reason: str, now_s: float) -> bool:
    """Mark a job failed because RunPod never took it; one job_metrics row, like any terminal job, counted in the
    day's spend and, for a named client's job, in its client's (no cost: a job RunPod never ran).
    No worker image ran it: its tag is cleared, so a RunPod outage does not count as the configured
    image's errors (RunPod's own outcome, should it have taken the job after all, names the image)."""
    marker = f"submit:{job['id']}"
    e2e = max(0, int(now_s * 1000) - job["created_at_ms"])
    results = await db.batch([
        Statement("UPDATE jobs SET status = 'failed', error = ?, version = version + 1, last_delivery = ?, "
                  "e2e_ms = ?, worker_image_tag = NULL, finished_at = ?, updated_at = ? "
                  "WHERE id = ? AND status = 'queued' AND runpod_job_id IS NULL",
                  (reason, marker, e2e, iso_ms(now_s), iso_ms(now_s), job["id"])),
        # the day's spend before the metrics row it counts (service/spend.py): the job, at no cost
        spend.add_statement(job["id"], marker, now_s),
        # and its client's day, as a transition's batch does: a later webhook of RunPod's (it took the job after all)
        # adds its cost there without the job, which this counts
        *([spend.client_add_statement(job["id"], marker, now_s)] if job.get("client") is not None else []),
        # images: 0, as for any job that did not complete (NULL is a row from before migration 0003)
        Statement("INSERT OR IGNORE INTO job_metrics (job_id, stack, status, e2e_ms, workflow_version, "
                  "worker_image_tag, created_at, images) SELECT id, stack, 'failed', e2e_ms, workflow_version, "
                  "worker_image_tag, created_at, 0 FROM jobs WHERE id = ? AND last_delivery = ?",
                  (job["id"], marker)),
    ])
    return results[0].changes == 1


def status_view(job: dict[str, Any]) -> dict[str, Any]:
    """The job as GET /api/status shows it (result URLs are added by the route)."""
    worker_timings = json.loads(job["worker_timings_json"]) if job.get("worker_timings_json") else None
    return {
        "job_id": job["id"],
        "status": job["status"],
        "workflow_id": job["workflow_id"],
        "workflow_version": job["workflow_version"],
        "worker_image_tag": job["worker_image_tag"],
        "trace_id": job["trace_id"],
        # the named client that created it; null for the API token (and a database before migration 0010)
        "client": job.get("client"),
        "runpod_job_id": job["runpod_job_id"],
        "error": job["error"],
        "timings": {
            "created_at": job["created_at"],
            "finished_at": job["finished_at"],
            "queue_ms": job["runpod_queue_duration_ms"],
            "run_ms": job["runpod_run_duration_ms"],
            "e2e_ms": job["e2e_ms"],
            "worker": worker_timings,
        },
        "gpu_type": job["gpu_type"],
        # a REAL column: D1 hands an integral one back as a JS number, which Pyodide makes an int (0, not 0.0)
        "cost_estimate_usd": None if job["cost_estimate_usd"] is None else float(job["cost_estimate_usd"]),
    }


def stored_results(job: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(job["results_json"]) if job.get("results_json") else []
