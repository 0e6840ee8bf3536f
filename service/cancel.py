"""`POST /api/cancel/<job_id>`: a client stops the GPU spend of a job it no longer wants. One RunPod
/cancel call, whose answer is applied through the same transitions as a webhook (`source: cancel`), so a
webhook that races it, or comes after it, is settled by the same rules; a CANCELLED answer is first completed
by one /status read, for the job's run time and cost. A job that has ended is answered as it stands, with
nothing called. The request carries nothing but the job's id: a body other than none, `{}` or `null` is refused.
A named client cancels its own jobs only: another caller's is answered as a job there is not, nothing called.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from service import jobs
from service.http import ApiError, Request, Response, json_response, parse_json_body
from service.logs import Logger
from service.ports import StoreUnavailable
from service.recover import runpod_delivery
from service.routes import (
    client_of,
    job_context,
    log_refusal,
    parse_job_id,
    read_visible_job,
    require_bearer,
    unknown_job,
)
from service.runpod import RunPodRefused, RunPodUnavailable
from service.transitions import Delivery, Outcome

if TYPE_CHECKING:
    from service.app import App

SOURCE = "cancel"  # webhook_deliveries.source and the applied line's data.source
# A job younger than its /run timeout plus this may still be waiting for RunPod's answer (its id): the
# slack covers the insert before the call and two machines' clocks (Workers on Cloudflare).
_SUBMIT_SLACK_MS = 60_000


async def cancel_job(app: App, request: Request, job_id: str) -> Response:
    caller = require_bearer(app, request)
    job_id = parse_job_id(job_id)
    _refuse_a_body(request)
    job = await read_visible_job(app, caller, job_id)  # another client's job is none of this one's
    if job is None:
        raise unknown_job(job_id)
    log = app.log.bind(**await job_context(app, job["id"], job))
    try:
        return await _cancel(app, job, log, client_of(caller) is None)
    except Exception as exc:
        refused = isinstance(exc, ApiError) and exc.status < 500
        log_refusal(log, "job.cancel_failed", exc, "warning" if refused else "error",
                    runpod_job_id=job["runpod_job_id"])
        raise


def _refuse_a_body(request: Request) -> None:
    """A cancel takes no parameters: no body, or one that says nothing (`{}` or `null`, what a client library sends
    for "no JSON"). Anything else (a reason, another job's id, text that is not JSON) is refused before the job is
    read or RunPod called, as the recovery route refuses a body it does not take: the client learns that what it
    sent is not taken, rather than have the job cancelled regardless."""
    if not request.body:
        return
    body = parse_json_body(request)  # 400 invalid_json: not JSON
    if body is not None and body != {}:
        raise ApiError(400, "invalid_body", "a cancel takes no body (or {}): it cancels the job its path names, "
                                            "nothing else; send the request without one")


def _recover(operator: bool, how: str) -> str:
    """What to do when only a recovery settles the job: the operator's own words (`how`), or, to a named client, whose
    act a recovery is (the recover route answers a client 403 operator_only)."""
    return how if operator else "ask the stack's operator to recover the job, naming its job_id"


async def _cancel(app: App, job: dict[str, Any], log: Logger, operator: bool = True) -> Response:
    job_id, rid, status = job["id"], job["runpod_job_id"], job["status"]
    if status in jobs.TERMINAL:  # idempotent: a second cancel, or one after the outcome, changes nothing
        return _skipped(log, job_id, status, "already_ended", None, rid,
                        f"job {job_id} had already ended ({status}): nothing was cancelled")
    if rid is None:
        raise _not_submitted(app, job, operator)
    unchanged = f"job {job_id} is unchanged"
    try:
        reply = await app.runpod.cancel(rid)
    except RunPodUnavailable as exc:
        raise ApiError(503, "runpod_unavailable", f"{exc}; {unchanged}: cancel it again later") from None
    except RunPodRefused as exc:
        if exc.status == 404:  # RunPod deleted it (its ttl, or 30 minutes after it ended): nothing runs
            raise ApiError(409, "unknown_runpod_job",
                           f"RunPod has no job {rid} any more (its ttl expired, or it ended over 30 minutes "
                           f"ago): nothing of it runs; {unchanged}: "
                           + _recover(operator, "settle it with a recovery (goldgate recover, POST "
                                                "/api/admin/recover/<job_id>)")) from None
        raise ApiError(502, "runpod_refused", f"{exc}; {unchanged}") from None
    delivery = runpod_delivery(rid, reply, "cancel")
    if delivery.status not in jobs.TERMINAL:
        raise ApiError(502, "runpod_not_cancelled",
                       f"RunPod answered {delivery.runpod_status} to the cancel of {rid}: it still has the "
                       f"job; {unchanged}: cancel it again")
    if delivery.execution_time_ms is None and delivery.status in ("cancelled", "timed_out"):
        delivery = await _with_timings(app, rid, delivery)
    if not _settles(delivery):
        # A COMPLETED without its output would be recorded failed (no images to check), a FAILED without
        # its error would hide why: RunPod sends a webhook for both, which brings the whole outcome.
        return _skipped(log, job_id, status, "runpod_already_finished", delivery.runpod_status, rid,
                        f"RunPod had already finished job {job_id} ({delivery.runpod_status}) before the "
                        "cancel: nothing was cancelled; its webhook records the outcome (if it never comes, "
                        + _recover(operator, "recover the job") + ")")
    try:
        outcome = await app.transitions.apply(job_id, delivery, SOURCE, app.clock())
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", f"result store unreachable while checking results: {exc}; "
                                                 f"{unchanged}: cancel it again later") from None
    return _answer(job_id, outcome, delivery.runpod_status, _message(job_id, delivery, outcome))


async def _with_timings(app: App, rid: str, cancelled: Delivery) -> Delivery:
    """The cancelled job as RunPod's /status tells it, with its delayTime and executionTime (documented on
    /status; /cancel answers only id and status): the job ran on a GPU until it was stopped, and its run time
    is what its cost estimate is made of. One call, made once for this client's request: no polling.
    `cancelled` as it was when /status fails or tells another status (RunPod's view moving on, an answer
    without timings)."""
    try:
        told = runpod_delivery(rid, await app.runpod.status(rid), "status")
    except (ApiError, RunPodUnavailable, RunPodRefused):
        return cancelled
    if told.runpod_status != cancelled.runpod_status or told.execution_time_ms is None:
        return cancelled
    return told


def _settles(delivery: Delivery) -> bool:
    """Whether RunPod's /cancel answer is an outcome the job may be recorded with: CANCELLED and TIMED_OUT
    are their status alone; COMPLETED only with its output (its images are checked), FAILED only with why."""
    if delivery.runpod_status == "COMPLETED":
        return delivery.output is not None
    if delivery.runpod_status == "FAILED":
        return delivery.error is not None or delivery.output is not None
    return True


def _message(job_id: str, delivery: Delivery, outcome: Outcome) -> str:
    if outcome.applied and outcome.status == "cancelled":
        return f"job {job_id} is cancelled: RunPod stopped it"
    if outcome.applied:
        return (f"RunPod had already finished job {job_id} ({delivery.runpod_status}) before the cancel: "
                f"recorded as RunPod reports it ({outcome.status})")
    if outcome.reason in ("duplicate", "no_change") and outcome.status == "cancelled":
        # Two cancels at once, or RunPod's CANCELLED webhook, sent as it stopped the job, recorded before this
        # answer: the same delivery (a duplicate), or one without the same timings (no change). Not "nothing
        # changed": the job is cancelled, as the client asked.
        return (f"job {job_id} is cancelled: RunPod stopped it; RunPod's webhook or another cancel "
                "recorded it first")
    return (f"RunPod reports {delivery.runpod_status} for job {job_id}, which is {outcome.status} "
            f"({outcome.reason}): nothing changed")


def _answer(job_id: str, outcome: Outcome, runpod_status: str | None, message: str) -> Response:
    cancelled = outcome.applied and outcome.status == "cancelled"
    return json_response(200, {"job_id": job_id, "cancelled": cancelled, **outcome.to_dict(),
                               "runpod_status": runpod_status, "message": message})


def _skipped(log: Logger, job_id: str, status: str, reason: str, runpod_status: str | None,
             rid: str | None, message: str) -> Response:
    """A cancel that changed nothing and applied nothing; its line says why."""
    log.info("job.cancel_skipped", status=status, reason=reason, runpod_job_id=rid, message=message,
             data={"runpod_status": runpod_status})
    return _answer(job_id, Outcome(False, reason, status), runpod_status, message)


def _not_submitted(app: App, job: dict[str, Any], operator: bool = True) -> ApiError:
    """The 409 for a job with no RunPod id: its /run call still waits for RunPod's answer (retry shortly),
    or that answer, or the write of its id, was lost long ago (nothing here knows what to cancel)."""
    job_id = job["id"]
    run_timeout_ms = job["run_timeout_ms"]
    if run_timeout_ms is None:  # recorded before migration 0005
        run_timeout_ms = math.ceil(app.config.runpod_timeout_s * 1000)
    if app.clock() * 1000 - job["created_at_ms"] <= run_timeout_ms + _SUBMIT_SLACK_MS:
        return ApiError(409, "submission_in_flight",
                        f"job {job_id} is being submitted to RunPod and has no RunPod id yet: nothing "
                        "changed; cancel it again in a few seconds", retry_after="2")
    return ApiError(409, "not_submitted",
                    f"job {job_id} has no RunPod id recorded (status {job['status']}): RunPod never took it, "
                    "or its id was lost; nothing changed; "
                    + _recover(operator, "if a job.runpod_id_unrecorded log line names this job, cancel its "
                                         "runpod_job_id in RunPod's console, then recover the job (goldgate recover "
                                         "--runpod-job-id)"))
