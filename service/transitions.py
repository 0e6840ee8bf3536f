"""The one transition function: applies a RunPod delivery (webhook or recovery /status) to a job.

Its rules (identity, attempt, order, conflicting terminal states, no RunPod outcome, results, metrics, cost of a
retried job, timings, concurrency): docs/WEBHOOK_SEMANTICS.md, "Deliveries".
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from service import cost, jobs, spend
from service.http import ApiError
from service.logs import Logger
from service.ports import Database, ResultStore, Statement
from service.results import ResultRejected, parse_images, verify_images

RUNPOD_STATUSES = {"IN_QUEUE": "queued", "IN_PROGRESS": "in_progress", "COMPLETED": "completed",
                   "FAILED": "failed", "CANCELLED": "cancelled", "TIMED_OUT": "timed_out"}
_RANK = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2, "cancelled": 2, "timed_out": 2}
_MAX_RACES = 16
# The job and whether this delivery was seen, in one round trip (D1 calls cross the network).
READ_JOB = ("SELECT id, stack, status, version, last_delivery, runpod_job_id, trace_id, workflow_version, "
             "worker_image_tag, created_at_ms, policy_ttl_ms, run_timeout_ms, cost_estimate_usd, client, "
             "(SELECT d.runpod_status FROM webhook_deliveries AS d WHERE d.fingerprint = jobs.last_delivery) "
             "AS last_runpod_status, "
             "EXISTS (SELECT 1 FROM webhook_deliveries WHERE fingerprint = ?) AS seen FROM jobs WHERE id = ?")

# A measurement this delivery lacks is kept from an earlier delivery of the same attempt (an unfinished
# job's); an ended job's belong to the attempt a /retry replaced, not to this one.
_THIS_ATTEMPTS = "COALESCE(?, CASE WHEN status IN ('queued', 'in_progress') THEN {0} END)"
# Except the run time: a running job's executionTime (a recovery's /status answer) is how long it had run so far, so
# an ending delivery without one (a forgotten job's, one read from the result store) leaves it null. The second
# parameter is 1 while the job is still unfinished after this delivery.
_RUN_SO_FAR = "COALESCE(?, CASE WHEN ? AND status IN ('queued', 'in_progress') THEN runpod_run_duration_ms END)"
_UPDATE_SET = ("status = ?, {adopt}version = version + 1, last_delivery = ?, error = ?, results_json = ?, "
               f"worker_timings_json = {_THIS_ATTEMPTS.format('worker_timings_json')}, worker_image_tag = ?, "
               f"gpu_type = {_THIS_ATTEMPTS.format('gpu_type')}, "
               f"runpod_queue_duration_ms = {_THIS_ATTEMPTS.format('runpod_queue_duration_ms')}, "
               f"runpod_run_duration_ms = {_RUN_SO_FAR}, e2e_ms = ?, "
               "cost_estimate_usd = ?, finished_at = ?, updated_at = ?")
_UPDATE = f"UPDATE jobs SET {_UPDATE_SET.format(adopt='')} WHERE id = ? AND version = ?"
# Adopts the delivery's RunPod id unless another job holds it (jobs_runpod_job_id): the check and the write are one
# statement, so two adoptions of one id at once cannot both pass it (D1 has no transaction around a check and a
# write, and a unique index would fail the migration of a database already holding a duplicate).
_UPDATE_ADOPTING = (f"UPDATE jobs SET {_UPDATE_SET.format(adopt='runpod_job_id = COALESCE(runpod_job_id, ?), ')} "
                    "WHERE id = ? AND version = ? "
                    "AND NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.runpod_job_id = ? AND o.id <> jobs.id)")
# A terminal batch's statements: the UPDATE, the delivery's record, with a daily spend limit the day's spend before the
# add, the add (RETURNING the day's spend after it); for a job of a named client, with a client daily spend limit the
# client's day's spend before its add, its add (RETURNING); then the metrics row.
_SPEND_AT = 2
# Read in the adopting batch, after its UPDATE: the job holding the id when that UPDATE refused it.
_HOLDER = "SELECT id FROM jobs WHERE runpod_job_id = ? AND id <> ? LIMIT 1"


# One encoder for every call: json.dumps with these options builds a new one each time (every fingerprint).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Delivery:
    runpod_job_id: str | None  # None: no RunPod outcome (docs/WEBHOOK_SEMANTICS.md, "No RunPod outcome")
    runpod_status: str
    delay_time_ms: int | None
    execution_time_ms: int | None
    output: Any
    error: Any
    dropped: tuple[str, ...] = ()  # timings RunPod sent that are no usable duration (not in the fingerprint)
    # The worker's outcome read from the result store (RunPod had forgotten the job): RunPod's timings are unknown,
    # and the time until the recovery is no end-to-end time.
    from_store: bool = False

    @property
    def status(self) -> str:
        return RUNPOD_STATUSES[self.runpod_status]

    def fingerprint(self, job_id: str) -> str:
        # One hash over the canonical JSON of all parts; equal to hashing the parts separately
        # for identity purposes (canonical JSON is unambiguous), at a third of the cost.
        return _sha(_canonical([job_id, self.runpod_job_id, self.runpod_status, self.delay_time_ms,
                                self.execution_time_ms, self.output, self.error]))


@dataclass(frozen=True)
class Outcome:
    applied: bool
    # applied | duplicate | out_of_order | no_change | terminal_conflict | runpod_id_mismatch | runpod_job_taken
    reason: str
    status: str  # the job's status after this delivery

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "reason": self.reason, "status": self.status}


def parse_delivery(payload: Any) -> Delivery:
    """RunPod's webhook / status JSON as a Delivery, or a 400 naming the bad field. delayTime and
    executionTime are only timings: one RunPod sends as a numeric string is read as a number, and
    one that is no usable number of milliseconds is dropped (None, named in `dropped`), never a
    reason to refuse the outcome (a refused webhook is retried twice, then lost)."""
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_payload", "RunPod payload must be a JSON object")
    rid, status = payload.get("id"), payload.get("status")
    if not isinstance(rid, str) or not rid or len(rid) > 128:
        raise ApiError(400, "invalid_payload", "RunPod payload field id must be a non-empty string", field="id")
    if not isinstance(status, str) or status not in RUNPOD_STATUSES:  # a list or object is no key of it
        raise ApiError(400, "invalid_payload", f"RunPod payload field status must be one of "
                                               f"{', '.join(RUNPOD_STATUSES)}", field="status")
    delay, execution = payload.get("delayTime"), payload.get("executionTime")
    delay_ms, execution_ms = _milliseconds(delay), _milliseconds(execution)
    dropped = tuple(name for name, raw, value in (("delayTime", delay, delay_ms),
                                                  ("executionTime", execution, execution_ms))
                    if raw is not None and value is None)
    return Delivery(rid, status, delay_ms, execution_ms, payload.get("output"), payload.get("error"), dropped)


_MAX_MS = 10**12  # about 31 years: no job lives that long


def _milliseconds(value: Any) -> int | None:
    """A RunPod timing as whole milliseconds, or None when it is no usable duration."""
    if value.__class__ is int:  # the usual case
        return value if 0 <= value <= _MAX_MS else None
    if isinstance(value, str) and len(value) <= 32:
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if 0 <= value <= _MAX_MS else None


@dataclass(frozen=True)
class Pricing:
    gpu_type: str | None
    gpu_count: int
    price_per_gpu_second: float | None
    worker_image_tag: str | None


def _decide(current: str, new: str) -> str:
    if current in jobs.TERMINAL:
        if _RANK[new] < 2:
            return "out_of_order"
        if new == "completed" and current in ("failed", "timed_out"):
            return "applied"
        if new == current and new in ("completed", "cancelled"):
            # nothing follows a COMPLETED or a CANCELLED (/retry takes neither): the same outcome, told again
            return "no_change"
        return "terminal_conflict"
    if _RANK[new] < _RANK[current]:
        return "out_of_order"
    if new == current:
        return "no_change"
    return "applied"


def _e2e_ms(job: dict[str, Any], delivery: Delivery, now_s: float,
            source: str) -> tuple[int | None, dict[str, Any] | None]:
    """A terminal job's end-to-end time, and, when the service's clock makes it impossible, None and why (for the
    applied line's `data.clock_suspect`). None without a RunPod outcome, with one read from the result store, or
    with any an operator's recovery applied (`source` recover: RunPod's /status answer tells that the job ended, not
    when): the time until an operator recovered the job (hours, for a webhook lost overnight) is no latency, and
    would top every percentile of its release.
    Both ends are the service's wall clock, read by different requests (on Cloudflare, on different machines):
    no monotonic clock spans them. So a step of it between the two lands in the figure, and the impossible ones
    are dropped: the clock reads over a minute before the job's creation (it stepped back: the figure used to be
    recorded as 0; less is two machines' clocks apart, and counts as 0), the job is younger than RunPod's own
    queue and run times say it ran (stepped back by less), or older than any RunPod job for it can live (stepped
    ahead, or years ahead). A step that leaves it possible stays in it."""
    if delivery.runpod_job_id is None or delivery.from_store or source == "recover":
        return None, None
    age = job_age_ms(job, now_s)
    # RunPod's figures as plausible_timings keeps them: ones longer than the job's age by this clock are taken for
    # RunPod's error, not the clock's (a step back that leaves the age positive cannot be told from that).
    queue, run = plausible_timings(job, delivery, now_s)
    ran = (queue or 0) + (run or 0)
    if age < -_TIMING_SLACK_MS:
        why = "the service's clock reads before the job's creation: it stepped back since"
    elif age + _TIMING_SLACK_MS < ran:
        why = "the job is younger by the service's clock than RunPod's queue and run times: the clock stepped back"
    elif age > lifetime_ms(job):
        why = ("the job is older by the service's clock than any RunPod job for it lives (policy.ttl): the clock "
               "stepped ahead")
    else:  # within the slack of clock reads on two machines (Workers on Cloudflare): never negative
        return max(0, age), None
    return None, {"job_age_ms": age, "runpod_ms": ran, "e2e_ms": "not recorded", "why": why}


def _failed_by_guess(job: dict[str, Any]) -> bool:
    """Failed on our guess, and nothing from RunPod since: because /run did not answer (jobs.fail_submission), or
    past its deadline (a FAILED delivery without a RunPod id). An applied delivery from RunPod records its id."""
    return job["runpod_job_id"] is None and job["status"] == "failed"


def _replaces_runpods_outcome(job: dict[str, Any]) -> bool:
    """An applied delivery for a job already ended by RunPod's word (not our guess): a retried attempt's."""
    return job["runpod_job_id"] is not None and job["status"] in jobs.TERMINAL


def _replaces_a_completion(job: dict[str, Any]) -> bool:
    """The job's outcome being replaced is a COMPLETED of RunPod's whose results we rejected. RunPod's /retry takes
    no COMPLETED job, so a later COMPLETED for its id (a recovery's /status answer, or a webhook that differs from
    the first) reports that same attempt, already priced."""
    return _replaces_runpods_outcome(job) and job.get("last_runpod_status") == "COMPLETED"


def _error_text(delivery: Delivery) -> str:
    if delivery.runpod_status == "TIMED_OUT":
        return "RunPod reported TIMED_OUT: the job exceeded its execution timeout or TTL"
    if delivery.runpod_status == "CANCELLED":
        return "RunPod reported CANCELLED: the job was cancelled before it finished"
    err = delivery.error
    if err is None and isinstance(delivery.output, dict):
        err = delivery.output.get("error")
    text = err if isinstance(err, str) else _canonical(err) if err is not None else "worker reported FAILED"
    return text[:2000]


def ran_by(job: dict[str, Any], output: dict[str, Any], pricing: Pricing) -> str | None:
    """The worker image that ran the job: the worker's own report, else what the job recorded
    (the stack's pinned tag at creation), else the stack's configured tag."""
    tag = output.get("worker_image_tag")
    return (tag if tag.__class__ is str and tag else None) or job["worker_image_tag"] or pricing.worker_image_tag


# The worker's own timings are a handful of numbers (status shows them); what it sends beyond this is
# not kept, so the job's row stays far below D1's 2,000,000-byte limit and its outcome is recorded.
_MAX_WORKER_TIMINGS_CHARS = 16_384


def worker_timings_json(output: dict[str, Any]) -> str | None:
    """The worker's `timings` object as stored, or None when it sent none or one over the size kept."""
    timings = output.get("timings")
    if not isinstance(timings, dict):
        return None
    text = _canonical(timings)
    return text if len(text) <= _MAX_WORKER_TIMINGS_CHARS else None


# RunPod measures both timings after we created the job, so neither can exceed the job's age by
# more than this (clock reads at different points); a larger figure is wrong and would skew the
# percentiles and bill hours that never ran.
_TIMING_SLACK_MS = 60_000
# Past a job's lifetime no delivery from RunPod can come (recover.py's deadline): the bounds are service/jobs.py's,
# which the cap's count of jobs in flight reads in SQL (_LIFETIME_SQL) by the same rule.
_MAX_POLICY_TTL_MS, _MAX_RUN_TIMEOUT_MS, _LIFETIME_SLACK_MS = (jobs.MAX_POLICY_TTL_MS, jobs.MAX_RUN_TIMEOUT_MS,
                                                               jobs.LIFETIME_SLACK_MS)


def lifetime_ms(job: dict[str, Any]) -> int:
    """The longest a job can wait for RunPod's outcome: its policy.ttl, its /run call's timeout, and some slack."""
    ttl, run_timeout = job.get("policy_ttl_ms"), job.get("run_timeout_ms")
    ttl = ttl if ttl.__class__ is int and 0 < ttl <= _MAX_POLICY_TTL_MS else _MAX_POLICY_TTL_MS
    run_timeout = min(run_timeout, _MAX_RUN_TIMEOUT_MS) if run_timeout.__class__ is int and run_timeout > 0 else 0
    return ttl + run_timeout + _LIFETIME_SLACK_MS


def job_age_ms(job: dict[str, Any], now_s: float) -> int:
    """How long the job has existed by the service's clock: negative when the clock stepped back since."""
    return int(now_s * 1000) - job["created_at_ms"]


def plausible_timings(job: dict[str, Any], delivery: Delivery, now_s: float) -> tuple[int | None, int | None]:
    """(queue ms, run ms) from RunPod, each None when missing or longer than the job has existed. When the
    service's clock reads before the job's creation, it stepped back since and the job's age is unknown: the
    bound is then the longest a RunPod job for it lives, so the step does not cost the job its run time and cost
    (RunPod bills by its executionTime, whatever our clock says)."""
    age = job_age_ms(job, now_s)
    limit = age + _TIMING_SLACK_MS if age >= 0 else lifetime_ms(job)
    queue, run = delivery.delay_time_ms, delivery.execution_time_ms
    return (queue if queue is None or queue <= limit else None), (run if run is None or run <= limit else None)


@dataclass(frozen=True)
class Figures:
    """A delivery's figures as the job records them: RunPod's queue and run ms (None where implausible), the
    end-to-end ms of a terminal one, why the service's clock left no e2e (`data.clock_suspect`), the GPU that ran
    it and, for a terminal one, the job's cost estimate (every attempt's: docs/WEBHOOK_SEMANTICS.md, "Cost of a
    retried job"). Worked out once per applied delivery: the database write and the applied line carry the same
    figures."""
    queue_ms: int | None
    run_ms: int | None
    e2e_ms: int | None
    clock_suspect: dict[str, Any] | None
    gpu_type: str | None = None
    cost_estimate_usd: float | None = None

    @classmethod
    def of(cls, job: dict[str, Any], delivery: Delivery, status: str, now_s: float, source: str,
           pricing: Pricing) -> Figures:
        queue_ms, run_ms = plausible_timings(job, delivery, now_s)
        terminal = status in jobs.TERMINAL
        e2e, suspect = _e2e_ms(job, delivery, now_s, source) if terminal else (None, None)
        output = delivery.output if isinstance(delivery.output, dict) else {}
        gpu = output.get("gpu_type") if isinstance(output.get("gpu_type"), str) else None
        gpu = ((gpu or pricing.gpu_type) or None) if delivery.runpod_job_id is not None else None
        usd = cost.estimate_usd(run_ms, gpu, pricing.gpu_count, pricing.price_per_gpu_second) if terminal else None
        if _replaces_a_completion(job):  # the same attempt again: priced once
            usd = job["cost_estimate_usd"] if job["cost_estimate_usd"] is not None else usd
        elif _replaces_runpods_outcome(job):  # the attempt RunPod ran after a /retry: it bills both
            usd = cost.attempts_usd(job["cost_estimate_usd"], usd)
        return cls(queue_ms, run_ms, e2e, suspect, gpu[:128] if gpu else None, usd)


def write_statements(job: dict[str, Any], delivery: Delivery, fingerprint: str, source: str,
                     checked: tuple[str, str | None, list[dict[str, Any]] | None], now_s: float,
                     pricing: Pricing, figures: Figures | None = None, spend_before: bool = False,
                     client_before: bool = False) -> list[Statement]:
    """The one batch (one D1 transaction) that applies a delivery to `job` as read (READ_JOB):
    the compare-and-set UPDATE on its version, then, only if that UPDATE happened, the delivery's
    record and, for a terminal state, the job's metrics row and its cost added to the day's spend
    (service/spend.py; its rows: the day's spend after it), which `spend_before` (a stack with a daily spend limit)
    has read right before it, for the crossing; for a job of a named client (job["client"]), its cost added to the
    client's day too, read before it when `client_before` (a client daily spend limit). `checked` = (status, error,
    results).
    An UPDATE that adopts the delivery's RunPod id also requires that no other job holds it, and the
    batch ends with a read of the job that does (none when the UPDATE happened)."""
    status, error, results = checked
    now = jobs.iso_ms(now_s)
    output = delivery.output if isinstance(delivery.output, dict) else {}
    tag = ran_by(job, output, pricing) if delivery.runpod_job_id is not None else None
    terminal = status in jobs.TERMINAL
    figures = figures or Figures.of(job, delivery, status, now_s, source, pricing)
    e2e, queue_ms, run_ms = figures.e2e_ms, figures.queue_ms, figures.run_ms
    gpu, usd = figures.gpu_type, figures.cost_estimate_usd
    timings = worker_timings_json(output)
    # The RunPod id is set only when the job has none yet (the webhook overtook our record of
    # /run's answer): naming the column otherwise would rewrite its index entry for nothing.
    adopt = adopts(job, delivery)
    statements = [
        Statement(
            _UPDATE_ADOPTING if adopt else _UPDATE,
            (status, *((delivery.runpod_job_id,) if adopt else ()), fingerprint, error,
             _canonical(results) if results is not None else None, timings,
             tag[:256] if tag else None, gpu,
             queue_ms, run_ms, 0 if terminal else 1, e2e, usd,
             now if terminal else None, now, job["id"], job["version"],
             *((delivery.runpod_job_id,) if adopt else ()))),
        Statement(
            "INSERT OR IGNORE INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, "
            "source, applied, outcome, received_at) SELECT ?, ?, ?, ?, ?, 1, 'applied', ? "
            "WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ? AND last_delivery = ?)",
            (fingerprint, job["id"], delivery.runpod_job_id, delivery.runpod_status, source, now,
             job["id"], fingerprint)),
    ]
    if terminal:
        # The crossing is judged on the row as this batch read it before and after its add (one transaction): an
        # "after less this job's cost" is a hair off in floating point, and logged the crossing again, or missed it.
        if spend_before:
            statements.append(spend.today_statement(now_s))
        # the day's spend first: it adds what the metrics row's write changes (service/spend.py)
        statements.append(spend.add_statement(job["id"], fingerprint, now_s))
        if job.get("client") is not None:  # the API token's jobs cost no statement more (bench/webhook_throughput.py)
            if client_before:
                statements.append(spend.client_today_statement(now_s, job["client"]))
            statements.append(spend.client_add_statement(job["id"], fingerprint, now_s))
        statements.append(Statement(
            "INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, "
            "e2e_ms, worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, created_at, images) "
            "SELECT id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, "
            "worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, created_at, ? FROM jobs "
            "WHERE id = ? AND last_delivery = ? "
            "ON CONFLICT (job_id) DO UPDATE SET status = excluded.status, "
            "runpod_queue_duration_ms = excluded.runpod_queue_duration_ms, "
            "runpod_run_duration_ms = excluded.runpod_run_duration_ms, e2e_ms = excluded.e2e_ms, "
            "worker_image_tag = excluded.worker_image_tag, gpu_type = excluded.gpu_type, "
            "cost_estimate_usd = excluded.cost_estimate_usd, images = excluded.images",
            # The image count lives on in the metrics row: `goldgate prune` may delete the job's row.
            (len(results or ()), job["id"], fingerprint)))
    if adopt:
        statements.append(Statement(_HOLDER, (delivery.runpod_job_id, job["id"])))
    return statements


def _before_after(results: list[Any], at: int) -> tuple[float, float] | None:
    """The spend a before-read (at `at`) and its add (right after it) saw, or None when the add's condition did not
    hold (nothing added)."""
    before, after = results[at].rows, results[at + 1].rows
    if not after:
        return None
    return float(before[0]["usd"]) if before else 0.0, float(after[0]["usd"])


def adopts(job: dict[str, Any], delivery: Delivery) -> bool:
    """Whether applying `delivery` to `job` as read records the delivery's RunPod id on it: the job has none."""
    return job["runpod_job_id"] is None and delivery.runpod_job_id is not None


class RunPodIdTaken(ApiError):
    """A recovery's delivery would give the job a RunPod id another job (`holder`) holds: nothing was changed."""

    def __init__(self, job_id: str, runpod_job_id: str, holder: str) -> None:
        super().__init__(409, "runpod_job_taken", f"RunPod job {runpod_job_id} is job {holder}'s: job {job_id} "
                                                  "is unchanged")
        self.runpod_job_id = runpod_job_id
        self.holder = holder


class Transitions:
    """Applies deliveries for one service instance (its DB, store, pricing and log)."""

    def __init__(self, db: Database, store: ResultStore, pricing: Pricing, log: Logger,
                 daily_spend_limit_usd: float | None = None, client_daily_spend_limit_usd: float | None = None) -> None:
        self.db = db
        self.store = store
        self.pricing = pricing
        self.log = log
        self.daily_spend_limit_usd = daily_spend_limit_usd
        self.client_daily_spend_limit_usd = client_daily_spend_limit_usd

    async def apply(self, job_id: str, delivery: Delivery, source: str, now_s: float) -> Outcome:
        fingerprint = delivery.fingerprint(job_id)
        checked: tuple[str, str | None, list[dict[str, Any]] | None] | None = None
        for _ in range(_MAX_RACES):  # a lost compare-and-set re-reads the job and decides again
            rows = await self.db.query(READ_JOB, (fingerprint, job_id))
            if not rows:
                raise ApiError(404, "unknown_job", f"no job {job_id}")
            job = rows[0]
            log = self.log.bind(job_id=job_id, trace_id=job["trace_id"],
                                workflow_version=job["workflow_version"],
                                worker_image_tag=job["worker_image_tag"])
            if job["seen"] or job["last_delivery"] == fingerprint:
                log.info("webhook.duplicate", reason="duplicate", status=job["status"],
                         runpod_job_id=delivery.runpod_job_id, data={"source": source})
                return Outcome(False, "duplicate", job["status"])
            if job["runpod_job_id"] is not None and job["runpod_job_id"] != delivery.runpod_job_id:
                return await self._ignore(job, delivery, fingerprint, source, "runpod_id_mismatch", log, now_s)
            decision = _decide(job["status"], delivery.status)
            if (decision == "terminal_conflict" and delivery.runpod_job_id is not None
                    and _failed_by_guess(job)):
                decision = "applied"  # our guess that no RunPod job ran it: RunPod's outcome replaces it
            if decision != "applied":
                return await self._ignore(job, delivery, fingerprint, source, decision, log, now_s)
            if checked is None:
                checked = await self._check_results(job_id, delivery)
            figures = Figures.of(job, delivery, checked[0], now_s, source, self.pricing)
            written, holder, spent, client_spent = await self._write(job, delivery, fingerprint, source, checked,
                                                                     now_s, figures)
            if written:
                new_status = checked[0]
                self._log_applied(log, job, delivery, new_status, checked[1], source, figures)
                if spent is not None:
                    self._log_crossing(log, *spent, now_s)
                if client_spent is not None:
                    self._log_client_crossing(log, job["client"], *client_spent, now_s)
                return Outcome(True, "applied", new_status)
            if holder is not None:  # the id is another job's: deciding again would not change that
                return await self._refuse_taken(job, delivery, fingerprint, source, holder, log, now_s)
        raise ApiError(503, "contended", f"job {job_id} is changing too fast to apply this delivery; retry")

    async def _check_results(self, job_id: str, delivery: Delivery
                             ) -> tuple[str, str | None, list[dict[str, Any]] | None]:
        """(status to record, error, results) for a delivery, after checking COMPLETED results."""
        if delivery.status == "completed":
            try:
                images = parse_images(job_id, delivery.output)
                await verify_images(self.store, images)
            except ResultRejected as exc:
                return "failed", str(exc), None
            return "completed", None, [image.to_dict() for image in images]
        if delivery.status in jobs.TERMINAL:
            return delivery.status, _error_text(delivery), None
        return delivery.status, None, None

    async def _write(self, job: dict[str, Any], delivery: Delivery, fingerprint: str, source: str,
                     checked: tuple[str, str | None, list[dict[str, Any]] | None], now_s: float,
                     figures: Figures) -> tuple[bool, str | None, tuple[float, float] | None,
                                                tuple[float, float] | None]:
        """(whether the compare-and-set UPDATE happened; if it would have adopted an id another job holds, that
        job's id; with a daily spend limit, the day's spend before and after a terminal write's add; for a job of a
        named client with a client daily spend limit, the client's day's spend before and after its add)."""
        limited = self.daily_spend_limit_usd is not None
        client_limited = self.client_daily_spend_limit_usd is not None and job.get("client") is not None
        results = await self.db.batch(write_statements(job, delivery, fingerprint, source, checked, now_s,
                                                       self.pricing, figures, spend_before=limited,
                                                       client_before=client_limited))
        if results[0].changes == 1:
            if checked[0] not in jobs.TERMINAL:
                return True, None, None, None
            at = _SPEND_AT + (1 if limited else 0) + 1  # after the day's add: the client's statements, if any
            return (True, None, _before_after(results, _SPEND_AT) if limited else None,
                    _before_after(results, at) if client_limited else None)
        holders = results[-1].rows if adopts(job, delivery) else []
        return False, holders[0]["id"] if holders else None, None, None

    def _log_client_crossing(self, log: Logger, client: str, before_usd: float, after_usd: float,
                             now_s: float) -> None:
        """`spend.client_limit_reached` when this job's ending took its client's day's spend to the client daily
        spend limit: one line a day and client, for an alert to key on (that client's creates are refused from now
        until the day ends; every other caller is served)."""
        limit = self.client_daily_spend_limit_usd
        if not spend.crossed(before_usd, after_usd, limit):
            return
        day = spend.utc_day(now_s)
        log.log("warning", "spend.client_limit_reached", own_line=True, reason="client_spend_limit_reached",
                message=f"the jobs of client {client} that ended on {day} (UTC) are estimated at "
                        f"{spend.dollars(after_usd)}, at or over each client's daily spend limit of "
                        f"{spend.dollars(limit or 0)} ({spend.CLIENT_SPEC_FIELD}): that client's creates are refused "
                        "429 client_spend_limit_reached until 00:00 UTC; every other caller is served, and its jobs "
                        "in flight go on (docs/RUNBOOK.md, \"A runaway client: stop the spend\")",
                data={"client": client, "day": day, "spend_usd": round(after_usd, 6), "limit_usd": limit})

    def _log_crossing(self, log: Logger, before_usd: float, after_usd: float, now_s: float) -> None:
        """`spend.limit_reached` when this job's ending took the day's spend to the limit: one line a day, for an alert
        to key on (creates are refused from now until the day ends)."""
        limit = self.daily_spend_limit_usd
        if not spend.crossed(before_usd, after_usd, limit):
            return
        day = spend.utc_day(now_s)
        log.log("warning", "spend.limit_reached", own_line=True, reason="spend_limit_reached",
                message=f"the jobs that ended on {day} (UTC) are estimated at {spend.dollars(after_usd)}, at or "
                        f"over the daily spend limit of {spend.dollars(limit or 0)} ({spend.SPEC_FIELD}): creates "
                        "are refused 429 spend_limit_reached until 00:00 UTC; jobs in flight go on "
                        "(docs/RUNBOOK.md, \"Clients get 429 spend_limit_reached\")",
                data={"day": day, "spend_usd": round(after_usd, 6), "limit_usd": limit})

    async def _refuse_taken(self, job: dict[str, Any], delivery: Delivery, fingerprint: str, source: str,
                            holder: str, log: Logger, now_s: float) -> Outcome:
        # An operator's recovery is refused to them, with nothing recorded (they may give the job its own id
        # next); RunPod retries any webhook not answered 200, so it is recorded ignored, naming the holder.
        if source == "recover":
            raise RunPodIdTaken(job["id"], delivery.runpod_job_id or "", holder)
        return await self._ignore(job, delivery, fingerprint, source, "runpod_job_taken", log, now_s,
                                  message=f"RunPod job {delivery.runpod_job_id} is job {holder}'s: not adopted, "
                                          "ignored", holder_job_id=holder)

    async def _ignore(self, job: dict[str, Any], delivery: Delivery, fingerprint: str, source: str,
                      reason: str, log: Logger, now_s: float, message: str | None = None, **data: Any) -> Outcome:
        # Recording a non-applied delivery needs no compare-and-set: states only move forward, so
        # a delivery that is stale now stays stale. If the insert changes nothing, a concurrent copy
        # of this delivery was recorded between our read and now (D1 calls cross the network, and
        # the local adapter commits in groups): that copy answers with the reason, this one is the
        # duplicate.
        recorded = await self.db.execute(
            "INSERT OR IGNORE INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, "
            "applied, outcome, received_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (fingerprint, job["id"], delivery.runpod_job_id, delivery.runpod_status, source, reason,
             jobs.iso_ms(now_s)))
        if not recorded:
            log.info("webhook.duplicate", reason="duplicate", status=job["status"],
                     runpod_job_id=delivery.runpod_job_id, data={"source": source})
            return Outcome(False, "duplicate", job["status"])
        level = "info" if reason == "no_change" else "warning"
        log.log(level, f"webhook.{reason}", reason=reason, status=job["status"],
                runpod_job_id=delivery.runpod_job_id,
                message=message or f"RunPod {delivery.runpod_status} for a job that is {job['status']}: ignored",
                data={"source": source, "runpod_status": delivery.runpod_status,
                      "recorded_runpod_job_id": job["runpod_job_id"], **data})
        return Outcome(False, reason, job["status"])

    def _log_applied(self, log: Logger, job: dict[str, Any], delivery: Delivery, status: str,
                     error: str | None, source: str, figures: Figures) -> None:
        terminal = status in jobs.TERMINAL
        output = delivery.output if isinstance(delivery.output, dict) else {}
        queue_ms, run_ms = figures.queue_ms, figures.run_ms
        data: dict[str, Any] = {"source": source, "runpod_status": delivery.runpod_status,
                                "previous_status": job["status"]}
        unusable = [name for name, raw, kept in (("delayTime", delivery.delay_time_ms, queue_ms),
                                                 ("executionTime", delivery.execution_time_ms, run_ms))
                    if raw is not None and kept is None]
        if delivery.from_store:
            data["recovered_from"] = "result_store"
        if delivery.dropped or unusable:
            data["unusable_runpod_timings"] = [*delivery.dropped, *unusable]
        if isinstance(output.get("timings"), dict) and worker_timings_json(output) is None:
            data["worker_timings_dropped"] = f"over {_MAX_WORKER_TIMINGS_CHARS} characters as JSON"
        if figures.clock_suspect is not None:
            data["clock_suspect"] = figures.clock_suspect
        if terminal:  # the job's spend as its metrics row records it, so the logs alone can sum it
            data["cost_estimate_usd"] = figures.cost_estimate_usd
            data["gpu_type"] = figures.gpu_type
        fields: dict[str, Any] = {
            "reason": "applied", "status": status, "runpod_job_id": delivery.runpod_job_id,
            # the image that ran it, not the configured one
            "worker_image_tag": ran_by(job, output, self.pricing) if delivery.runpod_job_id is not None else None,
            "runpod_queue_duration_ms": queue_ms, "runpod_run_duration_ms": run_ms,
            "e2e_ms": figures.e2e_ms,
            "data": data,
        }
        if status == "failed" and delivery.status == "completed":
            log.error("job.result_rejected", message=error, error={"type": "ResultRejected", "message": error},
                      **fields)
        elif status in ("failed", "timed_out", "cancelled"):
            log.warning("job.finished", message=error, **fields)
        elif terminal:
            log.info("job.finished", **fields)
        else:
            log.info("job.progress", **fields)
