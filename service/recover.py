"""The manual recovery path, `POST /api/admin/recover/<job_id>`: one RunPod /status call, applied through the same
transitions as a webhook. For a job whose RunPod id was never recorded, an id the operator gives (or the one the
worker's stored outcome names) is checked before it is adopted; a job RunPod has forgotten is recovered from the
outcome its worker stored, or, past its ttl, recorded failed. Nothing here runs unless an operator asks."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from service import jobs
from service.http import ApiError, Request, Response, parse_json_body
from service.ports import StoreUnavailable
from service.results import OutcomeUnusable, outcome_key, result_prefix, stored_outcome
from service.routes import apply_delivery, job_context, log_refusal, parse_job_id, require_operator
from service.runpod import RunPodRefused, RunPodUnavailable
from service.transitions import Delivery, RunPodIdTaken, parse_delivery

if TYPE_CHECKING:
    from service.app import App


async def recover_job(app: App, request: Request, job_id: str) -> Response:
    require_operator(app, request)
    job_id = parse_job_id(job_id)
    given = _given_runpod_id(request)
    job = await jobs.get(app.db, job_id)
    if job is None:
        raise ApiError(404, "unknown_job", f"no job {job_id}")
    log = app.log.bind(**await job_context(app, job["id"], job))
    try:
        return await _recover(app, job, given)
    except Exception as exc:
        conflict = isinstance(exc, ApiError) and exc.status < 500
        log_refusal(log, "job.recover_failed", exc, "warning" if conflict else "error",
                     runpod_job_id=job["runpod_job_id"] or given)
        raise


# RunPod's job ids (`<uuid>-u1`, `sync-<uuid>-e1`): it becomes a path segment of the /status call.
RUNPOD_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _given_runpod_id(request: Request) -> str | None:
    """The RunPod id an operator names for a job that has none recorded (body {"runpod_job_id": ...}), or None
    for an empty body."""
    if not request.body:
        return None
    body = parse_json_body(request)
    if not isinstance(body, dict) or set(body) != {"runpod_job_id"}:
        raise ApiError(400, "invalid_body", 'send no body, or {"runpod_job_id": "<RunPod job id>"} for a job '
                                            "whose RunPod id was not recorded")
    rid = body["runpod_job_id"]
    if not isinstance(rid, str) or not RUNPOD_JOB_ID.fullmatch(rid):
        raise ApiError(400, "invalid_runpod_job_id", f"runpod_job_id must be RunPod's job id (1 to 128 of A-Z a-z "
                                                     f"0-9 . _ -, the first a letter or digit, e.g. <uuid>-u1), got "
                                                     f"{str(rid)[:64]!r}",
                       field="runpod_job_id")
    return rid


async def _recover(app: App, job: dict[str, Any], given: str | None) -> Response:
    job_id, rid = job["id"], job["runpod_job_id"]
    if given is not None and rid is not None and given != rid:
        raise ApiError(409, "runpod_id_recorded", f"job {job_id} already has RunPod id {rid}, not {given}; "
                                                  "recover it without runpod_job_id")
    expired_at = _runpod_deadline_s(app, job)
    expired = app.clock() >= expired_at
    unusable, check = "", "check the id on its job.runpod_id_unrecorded line"
    if rid is None and given is None:
        given, unusable = await _stored_runpod_id(app, job_id)
        check = f"the id is the one {outcome_key(job_id)} names: that outcome is not this job's"
    if rid is None and given is None:
        if expired:
            return await _apply_expired(app, job_id, f"no RunPod id was recorded for this job, and "
                                                     f"{_expiry(app, job)}{unusable}")
        raise ApiError(409, "not_submitted", f"job {job_id} has no RunPod id recorded (status {job['status']}): "
                                             "RunPod never took it, or RunPod's id for it was lost; if a "
                                             "job.runpod_id_unrecorded log line names this job, its runpod_job_id "
                                             'is that id: recover with the body {"runpod_job_id": "<that id>"} '
                                             "(goldgate recover: --runpod-job-id); if RunPod never took it, "
                                             f"recover it again from {jobs.iso_ms(expired_at)}, when RunPod has "
                                             "deleted any job for it (its ttl), to record it failed")
    claimed = rid is None  # the operator's id, or the outcome's: checked against RunPod's answer before it is adopted
    rid = rid or given
    if claimed:
        await _refuse_taken(app, job_id, rid, check)
    try:
        reply = await app.runpod.status(rid)
    except RunPodUnavailable as exc:
        raise ApiError(503, "runpod_unavailable", f"{exc}; retry the recovery later") from None
    except RunPodRefused as exc:
        if exc.status != 404:
            raise ApiError(502, "runpod_refused", str(exc)) from None
        return await _recover_forgotten(app, job, rid, claimed, expired, check)
    delivery = runpod_delivery(rid, reply, "status")
    if claimed:
        _check_claimed(job_id, delivery, check)
    return await _apply(app, job_id, delivery, check, runpod_status=delivery.runpod_status)


def runpod_delivery(rid: str, reply: Mapping[str, Any], call: str) -> Delivery:
    """RunPod's answer to `/<call>/<rid>` (status, cancel) as a delivery, or a 502: an unusable answer is
    RunPod's fault, not the caller's request."""
    try:
        return parse_delivery({"id": rid, **reply})
    except ApiError as exc:
        raise ApiError(502, "runpod_bad_answer", f"RunPod's /{call} answer for {rid} is unusable: "
                                                 f"{exc.message}") from None


async def _apply(app: App, job_id: str, delivery: Delivery, check: str, **extra: Any) -> Response:
    """The recovery's delivery applied like a webhook's. Another recovery may have given the same RunPod id to
    another job since `_refuse_taken` looked (D1 has no transaction around a check and a write): the adopting write
    refuses it then, and the answer is the same 409, with nothing changed."""
    try:
        return await apply_delivery(app, job_id, delivery, "recover", **extra)
    except RunPodIdTaken as exc:
        raise _taken(job_id, exc.runpod_job_id, exc.holder, check) from None


async def _recover_forgotten(app: App, job: dict[str, Any], rid: str, claimed: bool, expired: bool,
                             check: str) -> Response:
    """RunPod has no job `rid`: its output is gone 30 minutes after it ended, or the operator's id is wrong. A
    job whose worker stored the output it returned as `rid` is recovered from the store, checked like a webhook's."""
    job_id = job["id"]
    try:
        stored = await stored_outcome(app.store, job_id)
        unusable = ""
    except OutcomeUnusable as exc:
        stored, unusable = None, f"; the worker's outcome in the result store is unusable: {exc}"
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", f"result store unreachable while reading the job's outcome: "
                                                 f"{exc}; retry later") from None
    if stored is not None and stored.runpod_job_id != rid:
        if claimed:
            raise ApiError(409, "runpod_job_mismatch", f"RunPod has no job {rid}, and the worker stored job "
                                                       f"{job_id}'s outcome as RunPod job {stored.runpod_job_id}: "
                                                       f"job {job_id} is unchanged; recover it with that id")
        stored, unusable = None, (f"; the worker's outcome in the result store is RunPod job "
                                  f"{stored.runpod_job_id}'s, not {rid}'s")
    if stored is not None:
        delivery = Delivery(rid, "COMPLETED", None, None, stored.output, None, from_store=True)
        return await _apply(app, job_id, delivery, check, runpod_status=None, recovered_from="result_store")
    if claimed and expired:  # whichever id is right, no RunPod job can settle this one any more
        return await _apply_expired(app, job_id, f"RunPod has no job {rid}, and {_expiry(app, job)}{unusable}")
    if claimed:  # a mistyped id must not fail the job
        raise ApiError(409, "unknown_runpod_job", f"RunPod has no job {rid} (a wrong id, or its TTL expired); "
                                                  f"job {job_id} is unchanged; recover it again from "
                                                  f"{jobs.iso_ms(_runpod_deadline_s(app, job))}, when RunPod has "
                                                  "deleted any job for it (its ttl), to record it failed")
    # RunPod deletes a job when its TTL expires: the job can never finish, so record that.
    delivery = Delivery(rid, "FAILED", None, None, None,
                        f"RunPod has no record of job {rid} (its TTL expired or it was purged)"
                        f"{unusable or ', and the result store holds no outcome of its worker'}")
    return await apply_delivery(app, job_id, delivery, "recover", runpod_status=None)


async def _stored_runpod_id(app: App, job_id: str) -> tuple[str | None, str]:
    """(the RunPod id the outcome the worker stored for `job_id` names, or None; why a stored outcome is unusable,
    else ""). RunPod ran a job whose id was never recorded (its /run answer or the write of its id was lost) when
    its worker stored one: the id is then taken as an operator's would be, checked the same way, instead of the job
    being recorded failed with its images in R2."""
    try:
        stored = await stored_outcome(app.store, job_id)
    except OutcomeUnusable as exc:  # it vouches for no id: the job is recovered as if it had none, saying why
        return None, f"; the worker's outcome in the result store is unusable: {exc}"
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", f"result store unreachable while reading the job's outcome: "
                                                 f"{exc}; retry later") from None
    if stored is None:
        return None, ""
    if not RUNPOD_JOB_ID.fullmatch(stored.runpod_job_id):
        return None, f"; the worker's outcome in the result store names no RunPod job id: {stored.runpod_job_id!r}"
    return stored.runpod_job_id, ""


# RunPod deletes a job once its ttl (policy.ttl, counted from /run) has passed, queued or running. Past created_at +
# ttl, /run may still have reached RunPod up to its timeout later; the slack covers a slow insert before it (D1
# allows a query 30 s), RunPod's clock against ours, and the webhook of a job that ended at its deadline (retried
# twice, 10 s apart).
_RUNPOD_DEADLINE_SLACK_MS = 600_000


def _sent_ttl_ms(app: App, job: dict[str, Any]) -> int:
    """The policy.ttl the job was sent with; for a job recorded before migration 0005, the current config's."""
    return job["policy_ttl_ms"] if job["policy_ttl_ms"] is not None else app.config.ttl_ms


def runpod_deadline_s(job: dict[str, Any], ttl_ms: int, runpod_timeout_s: float) -> float:
    """From when no RunPod job can settle `job` any more: RunPod has deleted any job it took for it. From the ttl
    and /run timeout in force when the job was sent (its policy_ttl_ms, run_timeout_ms): the stack's may have been
    lowered since, while it ran. `ttl_ms` and `runpod_timeout_s` stand in for a job recorded before migration 0005
    (the service's current ones). `goldgate stuck` lists each stuck job's deadline by this too."""
    sent_ttl_ms = job["policy_ttl_ms"] if job["policy_ttl_ms"] is not None else ttl_ms
    run_timeout_ms = job["run_timeout_ms"]
    if run_timeout_ms is None:  # recorded before migration 0005
        run_timeout_ms = math.ceil(runpod_timeout_s * 1000)
    return (job["created_at_ms"] + sent_ttl_ms + run_timeout_ms + _RUNPOD_DEADLINE_SLACK_MS) / 1000


def _runpod_deadline_s(app: App, job: dict[str, Any]) -> float:
    return runpod_deadline_s(job, app.config.ttl_ms, app.config.runpod_timeout_s)


def _expiry(app: App, job: dict[str, Any]) -> str:
    return (f"no RunPod job can settle it any more: RunPod deletes a job {_sent_ttl_ms(app, job)} ms (policy.ttl) "
            f"after it is sent, which for this job was over by {jobs.iso_ms(_runpod_deadline_s(app, job))}")


async def _apply_expired(app: App, job_id: str, reason: str) -> Response:
    """Record as failed a job no RunPod job can settle: a FAILED delivery without a RunPod id (nothing is known to
    have run; an id RunPod does not know is not adopted), through the same transitions as a webhook."""
    return await apply_delivery(app, job_id, Delivery(None, "FAILED", None, None, None, reason), "recover",
                        runpod_status=None)


async def _refuse_taken(app: App, job_id: str, rid: str, check: str) -> None:
    """A 409 (and nothing changed) when another job has recorded the operator-given RunPod id: every client reads
    it from that job's status, and adopting it would give this job the other's outcome (a FAILED one is taken on
    the operator's word) and refuse its own webhook as a mismatch. Checked before RunPod is asked; the adopting
    write checks again (`_apply`)."""
    rows = await app.db.query("SELECT id FROM jobs WHERE runpod_job_id = ? AND id <> ? LIMIT 1", (rid, job_id))
    if rows:
        raise _taken(job_id, rid, rows[0]["id"], check)


def _taken(job_id: str, rid: str, holder: str, check: str) -> ApiError:
    return ApiError(409, "runpod_job_taken", f"RunPod job {rid} is job {holder}'s: job {job_id} is unchanged; {check}")


def _check_claimed(job_id: str, delivery: Delivery, check: str) -> None:
    """A 409 (and nothing changed) when an operator-given RunPod id's answer shows it is not this job's, or
    cannot settle it yet. Only a COMPLETED answer can tell: the worker writes under this job's result prefix.
    A FAILED, CANCELLED or TIMED_OUT answer carries nothing of the job, and is taken on the operator's word."""
    if delivery.status not in jobs.TERMINAL:
        raise ApiError(409, "runpod_job_unfinished", f"RunPod reports {delivery.runpod_status} for "
                                                     f"{delivery.runpod_job_id}: job {job_id} is unchanged; its "
                                                     "webhook settles it, or recover again once RunPod has finished")
    output = delivery.output if isinstance(delivery.output, dict) else {}
    images = output.get("images") if isinstance(output.get("images"), list) else []
    prefix = result_prefix(job_id)
    foreign = next((i["key"] for i in images if isinstance(i, dict) and isinstance(i.get("key"), str)
                    and not i["key"].startswith(prefix)), None)
    if foreign is not None:
        raise ApiError(409, "runpod_job_mismatch", f"RunPod job {delivery.runpod_job_id} ran another job (result "
                                                   f"{foreign[:200]!r} is not under {prefix}): job {job_id} is "
                                                   f"unchanged; {check}")
