"""The route handlers: each a short async function over a Request, returning a Response."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from datetime import datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, quote

from service import idempotency, jobs, ratelimit, spend
from service import inputs as input_images
from service.http import (
    ApiError,
    Request,
    Response,
    check_content_encoding,
    content_disposition,
    declares_over,
    entity_tag,
    if_none_match_fails,
    json_response,
    parse_json_body,
)
from service.logs import Logger, error_field
from service.metrics import MetricsError, compute
from service.ports import ObjectMeta, StorageBusy, StorageFull, StorageGone, StoreUnavailable
from service.results import (
    image_type,
    key_job_id,
    parse_result_key,
)
from service.runpod import RunPodRefused, RunPodUnavailable
from service.signing import (
    CLIENT_PREFIX,
    MAX_URL_TTL_S,
    result_signature,
    webhook_signature,
)
from service.transitions import Delivery, lifetime_ms, parse_delivery

if TYPE_CHECKING:
    from collections.abc import Mapping

    from service.app import App
    from service.workflows import Workflow

# The challenge of a webhook refused for its signature: the `sig` query parameter, HMAC-SHA256 of the job id.
WEBHOOK_CHALLENGE = 'Signature realm="runpod-webhook", param="sig"'


def bearer_holds(app: App, authorization: str | None) -> bool:
    """Whether an Authorization field carries the API token (the current one, or the previous while it is rotated)
    or a named client's token."""
    return app.caller(authorization) is not None


def require_bearer(app: App, request: Request) -> str:
    """Who the request's bearer token is: "current" or "previous" (the API token, while it is rotated), or
    "client:<name>" (a named client's token, service/clients.py); else a 401. A client's name goes on the request's
    line (`data.client`), never its token."""
    used = app.caller(request.header("authorization"))
    if used is None:
        raise ApiError(401, "unauthorized", "missing or wrong bearer token; send 'Authorization: Bearer <api token>'",
                       www_authenticate="Bearer")
    annotate_caller(app, used)
    return used


def require_operator(app: App, request: Request) -> str:
    """As require_bearer, for an operator's route (every `/api/admin/*` one, and GET /api/metrics): the API token
    only. A named client's token is answered 403 `operator_only` before anything is read: a recovery calls RunPod and
    may settle any job, which is the operator's act (docs/RUNBOOK.md, "A stuck job"), never a client's; the metrics
    are every client's jobs, spend and costs together."""
    used = require_bearer(app, request)
    if used.startswith(CLIENT_PREFIX):
        raise ApiError(403, "operator_only", f"{request.method} {request.path[:80]} is an operator's "
                       "route, served on the API token only, not on a client's token: ask the stack's operator")
    return used


def annotate_caller(app: App, used: str) -> None:
    """Say on the request's line who sent it, when it is not the current API token."""
    if used == "previous":  # the operator drops the previous token once no line says this any more
        app.log.annotate_data(token="previous")
    elif used.startswith(CLIENT_PREFIX):
        app.log.annotate_data(client=used.removeprefix(CLIENT_PREFIX))


def idempotency_scope(app: App, used: str) -> str:
    """Whose Idempotency-Keys a create's is among: the stack's for the API token (current or previous: one operator,
    as before clients), each named client's its own, so that two clients numbering their creates alike never get
    each other's job (or a 422 for a key only the other used)."""
    client = client_of(used)
    return app.config.stack if client is None else f"{app.config.stack} {CLIENT_PREFIX}{client}"


def client_of(used: str) -> str | None:
    """The client's name of a caller require_bearer answered; None for the API token."""
    return used.removeprefix(CLIENT_PREFIX) if used.startswith(CLIENT_PREFIX) else None


def parse_job_id(raw: str) -> str:
    if not jobs.JOB_ID.match(raw):
        raise ApiError(404, "unknown_job", "no such job; job ids are 32 lowercase hex characters")
    return raw


def unknown_job(job_id: str) -> ApiError:
    """The 404 of a job id no job has, and a named client's answer for another caller's job: the same status, code
    and message, so that a client cannot tell an id that exists from one that does not."""
    return ApiError(404, "unknown_job", f"no job {job_id}")


def visible_job(caller: str, job: dict[str, Any] | None) -> dict[str, Any] | None:
    """`job` (a row already read) when `caller` may see it, else None, as for a job there is not. The API token sees
    every job (the operator's); a named client only the jobs its token created (jobs.client): its jobs may be another
    team's or customer's neighbours on the same stack."""
    client = client_of(caller)
    if job is None or client is None:
        return job
    return job if job.get("client") == client else None


async def read_visible_job(app: App, caller: str, job_id: str) -> dict[str, Any] | None:
    """The job `job_id` when `caller` may see it (visible_job), else None. A named client's read names the client, so
    another's job comes back as the same empty read as a job there is not: none of its row leaves the database, and
    the answer takes no longer for a big row (a job's inputs may be a megabyte) than for none."""
    client = client_of(caller)
    if client is None:
        return await jobs.get(app.db, job_id)
    rows = await app.db.query("SELECT * FROM jobs WHERE id = ? AND client = ?", (job_id, client))
    return visible_job(caller, rows[0] if rows else None)


# How long GET /healthz reports a write refused for a busy database (a lock another process held, a D1 restart).
BUSY_REPORTED_S = 60


async def health(app: App, request: Request, **_: str) -> Response:
    try:
        await app.db.query("SELECT 1 AS ok")
    except Exception as exc:  # noqa: BLE001 - the database adapter has its own error type
        raise ApiError(503, "database_unavailable", f"database check failed: {type(exc).__name__}") from None
    # No write probe (on D1 there is no cheap "is it full"): what the adapter knows from the writes it refused.
    # The path of the file stays out of it: the answer is anyone's.
    refusal = getattr(app.db, "last_write_refusal", None)
    # A lock, or D1's restart, passes in seconds: one that old says nothing of the database now (on an idle stack
    # no write came to clear it), and a monitor would page for it long after.
    if refusal is not None and not (refusal.code == "database_busy" and time.time() - refusal.at_s > BUSY_REPORTED_S):
        clears = ("until the service is restarted on its own database" if refusal.code == "database_unavailable"
                  else "this clears at the next write it takes")
        raise ApiError(503, "database_unavailable", f"the database refused the last write it was given, at "
                                                    f"{jobs.iso_ms(refusal.at_s)} ({refusal.code}): reads go on, "
                                                    f"writes fail; {clears}")
    return json_response(200, {"status": "ok", "stack": app.config.stack})


async def list_workflows(app: App, request: Request, **_: str) -> Response:
    require_bearer(app, request)
    return json_response(200, {"workflows": [wf.to_dict() for wf in app.registry.all()]})


def _trace_id(request: Request) -> str:
    """A new job's trace id: the caller's (its valid W3C traceparent, Request.client_trace_id), else a new one."""
    return request.client_trace_id or uuid.uuid4().hex


async def create_job(app: App, request: Request, **_: str) -> Response:
    caller = require_bearer(app, request)
    replayed = await _create_within_rate(app, request, caller)
    if replayed is None:
        replayed = await _create_within_spend(app, request, caller)
    if replayed is not None:
        return replayed
    body = _create_body(request)
    key = idempotency.parse(request.header("idempotency-key"), idempotency_scope(app, caller), body)
    workflow = app.registry.get(body.get("workflow_id"))
    inputs = workflow.validate_inputs(body.get("inputs", {}))
    jobs.check_inputs_size(inputs)
    try:
        await _check_input_images(app, workflow, inputs)
    except ApiError as refused:
        # A retry of a create that was taken, made after its image expired or while the store cannot be asked: the
        # job it made, as any replay (the image was there when that job was taken).
        holder = await idempotency.held(app.db, key, app.clock()) if key else None
        if holder is None:
            if refused.status == 503:
                log_refusal(app.log, "job.create_failed", refused, "error")
            raise
        return _replayed(app, holder)
    job = _new_job(app, request, workflow, inputs, client_of(caller))
    log = app.log.bind(job_id=job.id, trace_id=job.trace_id, workflow_version=job.workflow_version)
    holder = await _record_job(app, key, job, log)
    if holder is not None:
        return _replayed(app, holder)
    log.info("job.created", status="queued", data={"workflow_id": workflow.id})
    run_body = _run_body(app, job, workflow, inputs)
    try:
        reply = await app.runpod.run(run_body)
    except (RunPodRefused, RunPodUnavailable, Exception) as exc:  # noqa: BLE001 - re-raised unless RunPod's
        return await _submit_failed(app, job, key, log, exc)
    return await _record_submission(app, job, reply, log)


def _create_body(request: Request) -> dict[str, Any]:
    """The create's JSON body, holding no field but workflow_id and inputs, or a 400 naming what is wrong."""
    body = parse_json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "body must be a JSON object {\"workflow_id\": ..., \"inputs\": {...}}")
    extra = sorted(set(body) - {"workflow_id", "inputs"})
    if extra:
        raise ApiError(400, "unknown_field", f"unknown field {extra[0][:64]!r}; send workflow_id and inputs",
                       field=extra[0][:64])
    return body


async def _check_input_images(app: App, workflow: Workflow, inputs: dict[str, Any]) -> None:
    """A 400 `input_image_missing` naming the first image parameter whose key (its shape checked by the workflow)
    the store does not hold: the worker would fail the job, billed, for it. A 503 when the store cannot be asked."""
    for param in workflow.parameters:
        key = inputs.get(param.name) if param.type == "image" else None
        if key is None:
            continue
        try:
            held = await app.store.head(key)
        except StoreUnavailable as exc:
            raise ApiError(503, "store_unavailable", f"the input image store could not be reached to check "
                                                     f"inputs.{param.name}: {exc}; retry later") from None
        if held is None:
            raise ApiError(400, "input_image_missing", f"inputs.{param.name}: no uploaded image {key}; upload it with "
                                                       "POST /api/inputs first and send the key it answers (uploads "
                                                       "are deleted after the stack's storage.result_ttl_days)",
                           field=f"inputs.{param.name}")


def _new_job(app: App, request: Request, workflow: Workflow, inputs: dict[str, Any],
             client: str | None = None) -> jobs.NewJob:
    """The job row a create writes: the workflow's release, the client's trace, the stack's limits now, and the
    named client that created it (None: the API token)."""
    now = app.clock()
    return jobs.NewJob(id=uuid.uuid4().hex, stack=app.config.stack, workflow_id=workflow.id,
                       workflow_version=workflow.version, inputs=inputs, trace_id=_trace_id(request),
                       created_at_s=now, worker_image_tag=app.config.worker_image_tag,
                       policy_ttl_ms=app.config.ttl_ms, run_timeout_ms=math.ceil(app.config.runpod_timeout_s * 1000),
                       max_in_flight=app.config.max_jobs_in_flight, client=client)


async def _record_job(app: App, key: idempotency.IdempotencyKey | None, job: jobs.NewJob,
                      log: Logger) -> idempotency.Holder | None:
    """Write the job (under its Idempotency-Key, when sent): None when it is written, else the job the same key
    and body created before, to answer with."""
    try:  # written before RunPod is called: nothing is ever lost
        if key is None:
            holder = None
            await jobs.insert(app.db, job)
        else:
            holder = await idempotency.insert_job(app.db, key, job)  # QueueFull frees the key it claimed
    except jobs.QueueFull as exc:  # nothing written, nothing sent: the client retries later
        app.log.bind(trace_id=job.trace_id, workflow_version=job.workflow_version).warning(
            "job.queue_full", reason="queue_full", message=exc.message,
            data={"workflow_id": job.workflow_id, "max_jobs_in_flight": exc.cap})
        raise
    except ApiError:  # the key was used for another body: a refusal, not a failed write
        raise
    except Exception as exc:
        log.error("job.create_failed", reason="database_write_failed", error=error_field(exc),
                  message="the job could not be recorded; it was not sent to RunPod")
        raise
    return holder


def _replayed(app: App, holder: idempotency.Holder) -> Response:
    # The replayed job's own release, not the one serving now: the replay is a line of that job's.
    app.log.bind(job_id=holder.job_id, trace_id=holder.trace_id, workflow_version=holder.workflow_version,
                 worker_image_tag=holder.worker_image_tag).info(
        "job.create_replayed", status=holder.status, reason="idempotency_key_seen",
        message="a create with the same Idempotency-Key and body was answered with its job")
    return accepted(holder.job_id, holder.status, holder.trace_id, replayed=True)


def _run_body(app: App, job: jobs.NewJob, workflow: Workflow, inputs: dict[str, Any]) -> dict[str, Any]:
    """RunPod's /run request: the job's input, its signed webhook, and the policy it runs under."""
    return {
        "input": {"workflow_id": workflow.id, "workflow_version": workflow.version, "inputs": inputs,
                  "job_id": job.id, "trace_id": job.trace_id, "result_prefix": f"results/{job.id}/"},
        "webhook": app.webhook_url(job.id),
        "policy": {"executionTimeout": app.config.execution_timeout_ms, "ttl": job.policy_ttl_ms},
    }


async def _submit_failed(app: App, job: jobs.NewJob, key: idempotency.IdempotencyKey | None, log: Logger,
                         exc: Exception) -> Response:
    """The answer to a create whose /run call failed: RunPod's refusal or absence (a 502 or 503 saying whether the
    job is marked failed and whether to submit it again), its webhook's record when that overtook the lost answer,
    or `exc` itself re-raised when it did not come from RunPod."""
    refused = isinstance(exc, RunPodRefused)
    reason = (f"RunPod refused the job: {exc}" if refused else
              f"RunPod could not be reached: {exc}" if isinstance(exc, RunPodUnavailable) else
              f"submitting to RunPod failed: {type(exc).__name__}")
    row, marked, unwritten = await _mark_submission_failed(app, job.id, reason, log)
    if row is not None and row["runpod_job_id"] is not None:
        # RunPod has the job after all: its webhook overtook this lost answer and recorded the id.
        log.warning("job.submit_answer_lost", status=row["status"], runpod_job_id=row["runpod_job_id"],
                    reason="webhook_overtook_run_answer", message=reason,
                    error={"type": type(exc).__name__, "message": reason})
        return accepted(job.id, row["status"], job.trace_id)
    # RunPod did not take the job only when it said so (a refusal, or 429). A timeout or a 5xx may have
    # reached it: the key stays with this job, so a retry with it answers this job (which RunPod's webhook
    # completes if it took it) instead of running and billing the work twice.
    not_taken = refused or getattr(exc, "status", None) == 429
    key_freed = key is not None and not_taken and await _release_key(app, key, job.id, log)
    from_runpod = isinstance(exc, (RunPodRefused, RunPodUnavailable))
    # The operator's line names RunPod's endpoint URL where the client's answer does not (RunPodUnavailable).
    logged = f"RunPod could not be reached: {exc.logged}" if isinstance(exc, RunPodUnavailable) else reason
    log.error("job.submit_failed", status="failed" if marked else "queued",
              reason="runpod_refused" if refused else "runpod_unavailable",
              message=logged,
              error={"type": type(exc).__name__, "message": logged} if from_runpod else error_field(exc))
    if not from_runpod:
        raise exc
    again = _submit_again(job.id, key, not_taken, key_freed)
    # No Retry-After when RunPod may have the job: the same request again would run and bill it twice.
    raise ApiError(502 if refused else 503, "runpod_refused" if refused else "runpod_unavailable",
                   f"{reason}; job {job.id} "
                   + ("is marked failed" if marked else f"could not be marked failed (the service's database "
                      f"{unwritten}): it stays queued until its lifetime passes")
                   + f"; {again}", job_id=job.id,
                   **({} if not_taken else {"retry_after": None})) from None


async def _mark_submission_failed(app: App, job_id: str, reason: str,
                                  log: Logger) -> tuple[dict[str, Any] | None, bool, str]:
    """(the job's row, whether it is marked failed, and when it could not be: what of the database refused) after
    marking a job failed whose /run call failed, unless a webhook recorded its RunPod id first."""
    marked, unwritten = True, ""
    try:
        row = await jobs.get(app.db, job_id)
        if row is not None and row["runpod_job_id"] is None and not await jobs.fail_submission(
                app.db, row, reason, app.clock()):
            row = await jobs.get(app.db, job_id)  # a webhook got there between the two reads
    except (StorageFull, StorageBusy, StorageGone) as full:  # the job stays queued; the answer is RunPod's
        log.annotate_data(not_marked_failed=error_field(full))  # on job.submit_failed's line
        row, marked = None, False
        unwritten = ("is full" if isinstance(full, StorageFull) else "is busy" if isinstance(full, StorageBusy)
                     else "file was replaced")
    return row, marked, unwritten


def _submit_again(job_id: str, key: idempotency.IdempotencyKey | None, not_taken: bool, key_freed: bool) -> str:
    """What a failed create's answer tells the client to do next."""
    # Without a key, a create RunPod may have taken (a timeout, a 5xx) is no invitation to send it again: the
    # same request would make a second job, which RunPod could run and bill as well.
    return ("submit it again later" if (key is None and not_taken) or key_freed else
            f"if RunPod took it after all, its webhook completes it: read GET /api/status/{job_id} before "
            "submitting again, which could run and bill the work twice (send an Idempotency-Key to make such "
            "a retry safe)" if key is None else
            "freeing its Idempotency-Key failed, so a retry with that key answers this failed job: submit it "
            "again later with a new key" if not_taken else
            "if RunPod took it after all, its webhook completes it; a retry with this Idempotency-Key answers "
            "this job: to submit anew, use a new key")


async def _record_submission(app: App, job: jobs.NewJob, reply: Mapping[str, Any], log: Logger) -> Response:
    """The 202 for a job RunPod took, once its RunPod id is recorded (or its webhook will record it)."""
    try:
        await jobs.record_runpod_id(app.db, job.id, reply["id"], app.clock())
    except Exception as exc:  # noqa: BLE001 - RunPod has the job: a 500 would have the client pay for it twice
        # Its webhook adopts the id (as when it overtakes this answer); the log keeps it for a recovery.
        log.error("job.runpod_id_unrecorded", status="queued", runpod_job_id=reply["id"],
                  reason="database_write_failed", message="RunPod took the job but recording its id failed; "
                  "its webhook records it", error=error_field(exc))
        return accepted(job.id, "queued", job.trace_id)
    log.info("job.submitted", status="queued", runpod_job_id=reply["id"])
    return accepted(job.id, "queued", job.trace_id)


def accepted(job_id: str, status: str, trace_id: str, replayed: bool = False) -> Response:
    """A create's 202: the job, and where to poll it (`Location`, relative: the host the client called)."""
    headers = {"location": f"/api/status/{job_id}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    return json_response(202, {"job_id": job_id, "status": status, "trace_id": trace_id}, headers)


async def _release_key(app: App, key: idempotency.IdempotencyKey, job_id: str, log: Logger) -> bool:
    """Whether the key of a job RunPod never took was freed. When it was not, the line says so in `data`
    (job.submit_failed, logged next, names the line and gives its reason and error)."""
    try:
        await idempotency.release(app.db, key, job_id)
    except Exception as exc:  # noqa: BLE001 - the client still gets the submission's own error
        log.warning("job.idempotency_key_kept", reason="database_write_failed",
                    data={"idempotency_key_kept": error_field(exc)})
        return False
    return True


async def _create_within_rate(app: App, request: Request, token: str) -> Response | None:
    """None when a create is within its token's rate limit (it is counted, before any other work). Over it, a
    retry with the Idempotency-Key and body of a create that was taken is answered with that job, as any replay
    (it makes no job and calls no RunPod); any other create is refused 429 `rate_limited`, nothing written."""
    refused = await app.within_rate(ratelimit.CREATE, token)
    if refused is None:
        return None
    holder = await _replay_of_taken(app, request, token)
    if holder is not None:
        return _replayed(app, holder)
    limit = app.rate_limits[ratelimit.CREATE]
    app.log.warning("job.rate_limited", reason="rate_limited", message=refused.message,
                    data={"per_minute": limit.per_minute, "period_s": ratelimit.PERIOD_S})
    raise refused


async def _replay_of_taken(app: App, request: Request, caller: str) -> idempotency.Holder | None:
    """The job a refused create's Idempotency-Key and body made before (a retry of a create that was taken, by the
    same caller: idempotency_scope), else None: a body or key that is no replay, or a database that cannot say,
    leaves the refusal as it is."""
    if request.header("idempotency-key") is None:
        return None
    try:
        key = idempotency.parse(request.header("idempotency-key"), idempotency_scope(app, caller),
                                _create_body(request))
        return await idempotency.held(app.db, key, app.clock()) if key is not None else None
    except Exception:  # noqa: BLE001 - no replay: the refusal stands
        return None


async def _create_within_spend(app: App, request: Request, caller: str) -> Response | None:
    """None when the create is within the day's spend limits: the stack's (api.daily_spend_limit_usd) and, on a named
    client's token, the client's own (api.client_daily_spend_limit_usd), each judged on its day's row, read together
    in one statement. At or over either, a retry of a create that was taken is answered with its job, as any replay;
    any other create is refused 429 until 00:00 UTC (`client_spend_limit_reached` for the client's own, checked first:
    its own spending is what stopped it; else `spend_limit_reached`), nothing written and no RunPod call."""
    limit = app.config.daily_spend_limit_usd
    client = client_of(caller)
    client_limit = app.config.client_daily_spend_limit_usd if client is not None else None
    if limit is None and client_limit is None:
        return None
    now = app.clock()
    own: spend.Today | None = None
    if client is None or client_limit is None:
        statement = spend.today_statement(now)
        spent = spend.today(await app.db.query(statement.sql, statement.params), now, limit)
    else:
        statement = spend.todays_statement(now, client)
        spent, own = spend.todays(await app.db.query(statement.sql, statement.params), now, limit, client_limit)
    own_over = own is not None and spend.client_over(own)
    if not own_over and (limit is None or spent.usd < limit):
        return None
    holder = await _replay_of_taken(app, request, caller)
    if holder is not None:
        return _replayed(app, holder)
    if own_over and own is not None and client is not None:  # (own is read for a client only)
        refused = spend.own_refusal(client, own, now)
        app.log.warning("job.client_spend_limit_reached", reason="client_spend_limit_reached", message=refused.message,
                        data={**own.to_dict(), "client": client, "retry_after_s": int(refused.extra["retry_after"])})
        raise refused
    refused = spend.refusal(spent, now)
    # The line is the operator's: it keeps the amounts a client's answer leaves out (spend.client_refusal).
    app.log.warning("job.spend_limit_reached", reason="spend_limit_reached", message=refused.message,
                    data={**spent.to_dict(), "retry_after_s": int(refused.extra["retry_after"])})
    raise refused if client is None else spend.client_refusal(now)


async def upload_within_rate(app: App, token: str) -> None:
    """Count an upload against its token's rate limit; over it, refuse it 429 `rate_limited`."""
    refused = await app.within_rate(ratelimit.INPUTS, token)
    if refused is not None:
        refuse_upload_over_rate(app, refused)


def refuse_upload_over_rate(app: App, refused: ApiError) -> NoReturn:
    """Log an upload refused for its rate (input.refused) and raise `refused`: nothing of it is stored, and a runtime
    adapter that counted it before reading its body (App.count_upload) read none of it."""
    app.log.warning("input.refused", reason="rate_limited", message=refused.message,
                    data={"per_minute": app.rate_limits[ratelimit.INPUTS].per_minute, "period_s": ratelimit.PERIOD_S})
    raise refused


async def upload_input(app: App, request: Request, **_: str) -> Response:
    """POST /api/inputs: the body is one PNG, JPEG or WebP image, stored create-only under a new key for a job's
    image parameter. Its header and structure are read (never the pixels): the type it claims, one still picture
    (service/inputs.py), its size within the stack's max_input_pixels and each side at least inputs.MIN_SIDE. 201
    with its key, bytes, size and sha256."""
    token = require_bearer(app, request)
    if not request.rate_counted:  # a runtime adapter that counted it has not read its body: see App.count_upload
        await upload_within_rate(app, token)
    check_content_encoding(request)
    limit = app.config.max_input_bytes
    if len(request.body) > limit or declares_over(request.header("content-length"), limit):
        _refuse_input(app, ApiError(413, "body_too_large", f"the image is over the {limit}-byte limit of an "
                                                           "upload; send a smaller file"))
    claimed = input_images.media_type(request.header("content-type"))
    if claimed not in input_images.EXTENSIONS:
        given = f"Content-Type {request.header('content-type')[:64]!r}" if request.header("content-type") else \
            "no Content-Type"
        _refuse_input(app, ApiError(415, "unsupported_media_type", f"the upload has {given}; send the image's raw "
                                                                   "bytes with Content-Type image/png, image/jpeg "
                                                                   "or image/webp"))
    if not request.body:
        _refuse_input(app, ApiError(400, "empty_body", "request body is empty; send the image's raw bytes"))
    try:
        header = input_images.read_header(request.body, claimed)
    except input_images.NotThatImage as exc:
        _refuse_input(app, ApiError(400, "invalid_image", str(exc)))
    if header.pixels > app.config.max_input_pixels:
        size = f"is {header.width}x{header.height} ({header.pixels} pixels)" if header.pictures == 1 else \
            (f"holds {header.pictures} pictures (a multi-picture JPEG, each of which ComfyUI decodes; the first is "
             f"{header.width}x{header.height}) of {header.pixels} pixels together")
        _refuse_input(app, ApiError(400, "image_too_large", f"the image {size}, over the "
                                                            f"{app.config.max_input_pixels}-pixel limit of an input "
                                                            "image; scale it down (a multi-picture JPEG: save its "
                                                            "first picture alone) and upload it again"))
    if min(header.width, header.height) < input_images.MIN_SIDE:  # the first picture: the one ComfyUI keeps
        _refuse_input(app, ApiError(400, "image_too_small", f"the image is {header.width}x{header.height}, under the "
                                                            f"{input_images.MIN_SIDE}-pixel minimum of each side of "
                                                            "an input image: ComfyUI's VAEEncode crops each side to a "
                                                            "multiple of 8, which leaves nothing of it; scale it up "
                                                            "and upload it again"))
    return await _store_input(app, request.body, header)


def _refuse_input(app: App, refused: ApiError) -> NoReturn:
    log_refusal(app.log, "input.refused", refused, "error" if refused.status >= 500 else "warning")
    raise refused


async def _store_input(app: App, data: bytes, header: input_images.ImageHeader) -> Response:
    digest = hashlib.sha256(data).hexdigest()
    for _ in range(2):  # a new random key is never taken; a second one is for the impossible
        key = f"{input_images.INPUTS_PREFIX}{uuid.uuid4().hex}.{input_images.EXTENSIONS[header.content_type]}"
        try:
            written = await app.store.create(key, data, header.content_type, digest)
        except StoreUnavailable as exc:
            _refuse_input(app, ApiError(503, "store_unavailable", f"the input image store could not take the "
                                                                  f"upload: {exc}; retry later"))
        if written:
            break
    else:
        _refuse_input(app, ApiError(503, "store_unavailable", "the input image store had an object under each new "
                                                              "key tried; retry later"))
    stored = {"key": key, "content_type": header.content_type, "bytes": len(data), "width": header.width,
              "height": header.height, "sha256": digest}
    app.log.info("input.stored", data={k: v for k, v in stored.items() if k != "sha256"})
    return json_response(201, stored)


async def runpod_webhook(app: App, request: Request, **_: str) -> Response:
    job_id, sig = request.query("job") or "", request.query("sig")
    signed_with = app.webhook_signed_with(job_id, sig) if jobs.JOB_ID.match(job_id) else None
    if signed_with is None:
        app.log.warning("webhook.bad_signature", reason="bad_signature",
                        job_id=job_id if jobs.JOB_ID.match(job_id) else None)
        # A 401 names how to authenticate (RFC 9110, 15.5.2): here, the per-job signature in the URL's query.
        raise ApiError(401, "bad_signature", "webhook signature missing or wrong for this job",
                       www_authenticate=WEBHOOK_CHALLENGE)
    if signed_with == "previous":  # the operator drops the previous secret once no line says this any more
        app.log.annotate_data(signed_with="previous")
    await app.check_body_size(request, signed_job=job_id)
    try:
        delivery = parse_delivery(parse_json_body(request))
        return await apply_delivery(app, job_id, delivery, "webhook")
    except Exception as exc:
        # RunPod retries a refused webhook twice, then the outcome is lost until the job is recovered:
        # the line names the job and its trace so the operator can.
        log = app.log.bind(**await job_context(app, job_id))
        log_refusal(log, "webhook.refused", exc, "error")
        raise


async def job_context(app: App, job_id: str, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """The log context of a job (for error paths only: it may read the job)."""
    if job is None:
        try:
            rows = await app.db.query("SELECT trace_id, workflow_version, worker_image_tag FROM jobs WHERE id = ?",
                                      (job_id,))
        except Exception:  # noqa: BLE001 - the database may be what failed; the job id still goes out
            rows = []
        job = rows[0] if rows else {}
    context = {"job_id": job_id}
    for key in ("trace_id", "workflow_version", "worker_image_tag"):
        if job.get(key) is not None:
            context[key] = job[key]
    return context


def log_refusal(log: Logger, event: str, exc: BaseException, level: str, **fields: Any) -> None:
    if isinstance(exc, ApiError):
        log.log(level, event, reason=exc.code, message=exc.message, **fields)
    else:
        log.log("error", event, reason="internal", error=error_field(exc), **fields)


async def apply_delivery(app: App, job_id: str, delivery: Delivery, source: str, **extra: Any) -> Response:
    try:
        outcome = await app.transitions.apply(job_id, delivery, source, app.clock())
    except StoreUnavailable as exc:
        raise ApiError(503, "store_unavailable", f"result store unreachable while checking results: {exc}; "
                                                 "retry later") from None
    return json_response(200, {**outcome.to_dict(), **extra})


async def job_status(app: App, request: Request, job_id: str) -> Response:
    caller = require_bearer(app, request)
    try:
        return await _job_status(app, parse_job_id(job_id), caller)
    except Exception as exc:
        if not isinstance(exc, ApiError) or exc.status >= 500:
            log_refusal(app.log.bind(**await job_context(app, job_id)), "job.status_failed", exc, "error")
        raise


async def _job_status(app: App, job_id: str, caller: str) -> Response:
    job = await read_visible_job(app, caller, job_id)  # the one read, the caller's jobs only
    if job is None:
        raise unknown_job(job_id)
    app.log.annotate(job_id=job_id, trace_id=job["trace_id"], workflow_version=job["workflow_version"],
                     worker_image_tag=job["worker_image_tag"])
    view = jobs.status_view(job)
    now_s = app.clock()
    view["timings"]["settle_by"] = settle_by(job)
    view["settled"] = settled(job, view["timings"]["settle_by"], now_s)
    expires = result_url_expiry(int(now_s), app.config.signed_url_ttl_s)
    view["results"] = [
        {"key": r["key"], "content_type": r["content_type"], "bytes": r["bytes"], "sha256": r.get("sha256"),
         "width": r.get("width"), "height": r.get("height"),
         "url": app.result_url(r["key"], expires), "url_expires_at": jobs.iso_ms(expires)}
        for r in jobs.stored_results(job)
    ]
    return json_response(200, view)


def settle_by(job: dict[str, Any]) -> str | None:
    """By when the job's status is RunPod's last word (UTC RFC 3339): its creation plus its lifetime
    (transitions.lifetime_ms, the deadline recover names). Past it no RunPod job for it runs or is kept, so no
    delivery of RunPod's comes: a job still queued or in_progress then needs an operator (goldgate stuck,
    recover), and a failed or timed_out one stays so unless an operator's recovery finds its worker's stored
    outcome. None once nothing can change the status (completed, cancelled), and for a row that recorded no
    policy.ttl or /run timeout (from before migration 0005): it cannot say when it was sent to live."""
    if job["status"] in ("completed", "cancelled"):
        return None
    if type(job.get("policy_ttl_ms")) is not int or type(job.get("run_timeout_ms")) is not int:  # a bool is no ttl
        return None
    return jobs.iso_ms((job["created_at_ms"] + lifetime_ms(job)) / 1000)


def settled(job: dict[str, Any], settle_by_at: str | None, now_s: float) -> bool:
    """Whether the job's status is its last (GET /api/status `settled`): nothing but an operator's act (a recovery,
    or a RunPod /retry of its id, which the service never sends) changes it any more, so a client stops polling.
    `completed` and `cancelled` are never replaced. A `failed` or `timed_out` job with a RunPod id holds RunPod's own
    outcome: only a retried attempt's COMPLETED would replace it (docs/WEBHOOK_SEMANTICS.md, "Conflicting terminal
    states"), and RunPod retries only when told to. A `failed` job with no RunPod id holds the service's guess (RunPod did not
    answer its /run, or a recovery past the job's lifetime), which RunPod's first outcome replaces: settled only
    once `settle_by` has passed on the service's clock (or for a row that kept no lifetime, from before migration
    0005). A job still queued or in progress is not settled: past settle_by it needs an operator."""
    status = job["status"]
    if status in ("completed", "cancelled"):
        return True
    if status not in ("failed", "timed_out"):
        return False
    if job["runpod_job_id"] is not None or settle_by_at is None:
        return True
    return now_s * 1000 >= job["created_at_ms"] + lifetime_ms(job)


# A result URL's expiry is rounded up to a multiple of this, the max-age of a result's answer (_validators): the
# status reads of one such span hand out the same URL, so a page's <img src> is served from the browser's cache
# instead of the image being fetched again on every poll. Rounding up never shortens the validity promised.
RESULT_URL_STEP_S = 300


def result_url_expiry(now_s: int, ttl_s: int) -> int:
    """The `exp` of a result URL handed out at `now_s`: at least `ttl_s` ahead, rounded up to RESULT_URL_STEP_S,
    and never further ahead than a result URL is accepted for (signing.MAX_URL_TTL_S)."""
    rounded = -(-(now_s + ttl_s) // RESULT_URL_STEP_S) * RESULT_URL_STEP_S
    return max(now_s + ttl_s, min(rounded, now_s + MAX_URL_TTL_S))


async def result_object(app: App, request: Request, key: str) -> Response:
    key = parse_result_key(key)
    caller = _require_result_access(app, request, key)
    # A named client's bearer is served its own jobs' results only: its job's row is read before the store (the read
    # the size check makes anyway, made first), and another caller's key is answered as one of no job's.
    client = client_of(caller) if caller is not None else None
    rows = await _own_result_row(app, key, client) if client is not None else None
    try:
        found = await _read_result(app, key, request.method == "HEAD", request.header("if-none-match"), rows)
    except StoreUnavailable as exc:
        refused = ApiError(503, "store_unavailable", f"result store unreachable: {exc}; retry later")
        log_refusal(app.log.bind(**await job_context(app, key_job_id(key))), "result.refused", refused, "error")
        raise refused from None
    if isinstance(found, Response):  # the client's copy is current: a 304
        return found
    meta, body = found
    # Only an allowed image is shown inline. Anything else under results/ (a stray upload, an object rewritten
    # in the bucket) would run as HTML or SVG on the API's own origin: it is only ever a download.
    image = image_type(meta.content_type)
    headers = {"content-type": image or "application/octet-stream", "content-length": str(meta.size),
               "content-disposition": content_disposition("inline" if image else "attachment",
                                                          key.rsplit("/", 1)[-1]),
               "x-content-type-options": "nosniff", **_validators(meta)}
    return Response(200, body, headers, log=app.log.bind(job_id=key_job_id(key)))


def _require_result_access(app: App, request: Request, key: str) -> str | None:
    """A valid signed link for `key` (exp and sig): None, whoever holds it may fetch it (that is what the link is
    for); or the bearer token: who it is (require_bearer); else a 401 or 403 saying which is missing."""
    signed = app.result_signed_with(key, request.query("exp"), request.query("sig"))
    if signed == "previous":
        app.log.annotate_data(signed_with="previous")
    if signed is None:
        exp, sig = request.query("exp"), request.query("sig")
        if bool(exp) != bool(sig) and request.header("authorization") is None:
            # Half a signed link: most often a shell that cut the URL at its '&' and ran `...?exp=N` alone. Say so,
            # or the bearer answer below has the holder of a link that needs no token look for one.
            raise ApiError(401, "unauthorized", "a signed result link needs both exp and sig; this one has only "
                                                f"{'exp' if exp else 'sig'}: quote the whole URL in a shell (it "
                                                "holds an '&'), or send 'Authorization: Bearer <api token>'",
                           www_authenticate="Bearer")
        if sig is not None and request.header("authorization") is None:
            raise ApiError(403, "url_expired_or_invalid", "this result URL has expired or is not valid; "
                                                          "ask GET /api/status for a fresh one")
        return require_bearer(app, request)
    return None


async def _own_result_row(app: App, key: str, client: str) -> list[dict[str, Any]]:
    """The rows of `key`'s job (as _unchanged reads them) when `client` created it; else the 404 of a key no job
    has, the store not asked: a client cannot tell another's result, or another's job, from none. A job row pruned
    while its results are kept names no client: only the API token may fetch those."""
    rows = await _result_job_rows(app, key, client)
    if not rows or rows[0].get("client") != client:
        raise _no_result(key)
    return rows


def _no_result(key: str) -> ApiError:
    """The 404 for a key of no job the caller may know of (none ever, a pruned one, another client's)."""
    return ApiError(404, "not_found", f"no result object {key} (results are deleted after the stack's "
                                      "storage.result_ttl_days)")


async def _read_result(app: App, key: str, head: bool, if_none_match: str | None,
                       rows: list[dict[str, Any]] | None = None) -> Response | tuple[ObjectMeta, Any]:
    """The stored object's meta and body (no body for a HEAD), each size checked against its job's record (`rows`,
    when already read), or the 304 when the client's copy is current."""
    body: Any = b""
    checked: int | None = None  # the size found to be the job's
    if head or if_none_match is not None:
        # The store's HEAD: a HEAD, and a client's copy found current, never read the object body.
        meta = await app.store.head(key)
        if meta is None:
            raise await _not_held(app, key)
        checked = await _unchanged(app, key, meta.size, rows)
        if if_none_match is not None and if_none_match_fails(if_none_match, entity_tag(meta.etag)):
            return Response(304, b"", _validators(meta))
    if not head:
        found = await app.store.get(key)
        if found is None:
            raise await _not_held(app, key)
        meta, body = found.meta, found.body
        if meta.size != checked:
            try:
                await _unchanged(app, key, meta.size, rows)
            except ApiError:
                await _release(body)
                raise
    return meta, body


async def _unchanged(app: App, key: str, size: int, rows: list[dict[str, Any]] | None = None) -> int:
    """`size`, when it is the size the key's job recorded for it as it completed (the worker's upload, checked in
    the store then), or the key's job recorded none (yet: a result is stored before its job's webhook lands; no job
    row). Objects are create-only, so the one served must still be that size: else it was rewritten in the bucket,
    is not the job's result, and the answer is a 409 (`_changed`). The store is asked first (but for a named client's
    token, whose job's row is read first to check it is the client's): a key it does not hold is a 404 whatever the
    database says; for one it holds, a database that cannot be read is a 503 to retry, not a
    result served unchecked. The size, never a hash: the body is streamed. The request's line is annotated with the
    job's context when its row is there (a pruned job's is not: a job_id without its trace_id names nothing).
    `rows`: the job's rows when already read (_own_result_row), not read again."""
    if rows is None:
        rows = await _result_job_rows(app, key)
    if rows:  # the download's line names the job as a status read's does: a filter on its trace_id finds it
        app.log.annotate(job_id=key_job_id(key), trace_id=rows[0]["trace_id"],
                         workflow_version=rows[0]["workflow_version"], worker_image_tag=rows[0]["worker_image_tag"])
    recorded = [r.get("bytes") for r in jobs.stored_results(rows[0]) if r.get("key") == key] if rows else []
    # a bool is no size; a row from before sizes were kept has none
    if recorded and type(recorded[0]) is int and recorded[0] != size:
        raise await _changed(app, key, recorded[0], size)
    return size


async def _result_job_rows(app: App, key: str, client: str | None = None) -> list[dict[str, Any]]:
    """The row of `key`'s job that a result's answer is checked against (none: no such job, or a pruned one); for a
    named `client`, only when that client created it, with its `client` (migration 0010: asked only for a client's
    token, which exists only past it), so another's row never leaves the database (read_visible_job); a 503 to
    retry when the database cannot be read."""
    columns = "results_json, trace_id, workflow_version, worker_image_tag" + (", client" if client else "")
    mine, params = (" AND client = ?", (key_job_id(key), client)) if client else ("", (key_job_id(key),))
    try:
        return await app.db.query(f"SELECT {columns} FROM jobs WHERE id = ?{mine}", params)
    except Exception as exc:  # noqa: BLE001 - any database failure: the check cannot be made now
        refused = ApiError(503, "database_unavailable", f"the database could not be read to check result {key}: "
                                                        f"{type(exc).__name__}; retry later")
        log_refusal(app.log.bind(job_id=key_job_id(key)), "result.refused", refused, "error",
                    error=error_field(exc))
        raise refused from None


async def _changed(app: App, key: str, recorded: int, stored: int) -> ApiError:
    """The 409 for a result the bucket holds at another size than its job recorded: it was overwritten (or damaged)
    in the bucket, and what is there now is not the job's result. Said once in the log (`result.changed`)."""
    job_id = key_job_id(key)
    message = (f"result {key} of job {job_id} has changed in the result store: it is {stored} bytes there, but the "
               f"job recorded {recorded} bytes; it is not served. Run the job again for a new result")
    app.log.bind(**await job_context(app, job_id)).error(
        "result.changed", reason="result_changed", message=message,
        data={"key": key, "recorded_bytes": recorded, "stored_bytes": stored})
    return ApiError(409, "result_changed", message)


async def _release(body: Any) -> None:
    """Let go of a store's body that will not be sent: the local store's stream (an async generator whose first
    chunk is already read: starting it reads nothing more, and closing it closes the store's connection), or
    R2's (its reader is cancelled)."""
    if hasattr(body, "aclose"):
        try:
            await body.__anext__()
        except (StopAsyncIteration, StoreUnavailable):
            pass
        await body.aclose()
    elif hasattr(body, "cancel"):
        await body.cancel()


async def _not_held(app: App, key: str) -> ApiError:
    """The 404 for a key the store does not hold. When its job recorded it as a result, the client is told so
    (`result_missing`), and the line says so: the object expired, or was deleted or damaged in the bucket (the
    local store drops an object whose body file went). Which of the two, when the service knows the stack's
    storage.result_ttl_days: the upload is at or before the job's finished_at, so a job finished that many
    days ago has its results expired. The job is read only here, on the way to a 404."""
    job_id = key_job_id(key)
    try:
        job = await jobs.get(app.db, job_id)
        recorded = job is not None and any(r.get("key") == key for r in jobs.stored_results(job))
    except Exception:  # noqa: BLE001 - the key is not held either way; a database error is not this answer
        job, recorded = None, False
    if job is not None and not recorded:  # not one a job one minute old lost: it never had it
        return ApiError(404, "not_found", f"no result object {key}: job {job_id} recorded no such result "
                                          f"(GET /api/status/{job_id} lists its keys)")
    if job is None or not recorded:  # no job row (pruned, or none ever), or the database failed the read
        return _no_result(key)
    finished, ttl_days = job["finished_at"], app.config.result_ttl_days
    expired = _expired(finished, ttl_days, app.clock())
    kept = f"{ttl_days} day{'' if ttl_days == 1 else 's'}"
    if expired is None:
        message = (f"result {key} is no longer in the result store, though job {job_id} recorded it when it "
                   f"finished at {finished}: results are deleted storage.result_ttl_days after their "
                   "upload, and one younger than that was deleted or damaged in the bucket; run the job "
                   "again for a new result")
    elif expired:
        message = (f"result {key} has expired: results are kept {kept} after upload and job {job_id} "
                   f"finished at {finished}; run the job again for a new result")
    else:
        message = (f"result {key} of job {job_id} was deleted or damaged in the bucket: it finished at "
                   f"{finished}, within the {kept} results are kept; run the job again for a new result")
    app.log.bind(**await job_context(app, job_id, job)).warning(
        "result.missing", reason="result_missing", message=message,
        data={"key": key, "job_finished_at": finished, "expired": expired})
    return ApiError(404, "result_missing", message)


def _expired(finished_at: Any, ttl_days: int | None, now_s: float) -> bool | None:
    """Whether a result of a job finished at `finished_at` is past the bucket's lifecycle rule (as R2's,
    deleted `ttl_days` after its upload), or None when that cannot be told: no ttl given, no readable time."""
    if ttl_days is None or not isinstance(finished_at, str):
        return None
    try:
        finished = datetime.fromisoformat(finished_at.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if finished.tzinfo is None:
        return None
    return now_s - finished.timestamp() >= ttl_days * 86_400


def _validators(meta: ObjectMeta) -> dict[str, str]:
    """What a 200 and a 304 both carry (RFC 9110 15.4.5). `private`: bearer and signed-URL answers are for
    this client alone, never a shared cache's; a result never changes, so a browser may reuse it a while."""
    headers = {"cache-control": "private, max-age=300"}
    etag = entity_tag(meta.etag)
    if etag is not None:
        headers["etag"] = etag
    if meta.last_modified_s is not None:
        headers["last-modified"] = formatdate(meta.last_modified_s, usegmt=True)
    return headers


async def metrics_report(app: App, request: Request, **_: str) -> Response:
    """`?by=workflow_version` adds the workflow versions' group (one more statement, about as much work as the
    rest of the report): only when asked. `by` takes that one value, once, and `since` one time; anything else is
    refused before any read. The operator's only (require_operator): it shows the whole stack's spend, costs and
    jobs, every client's together."""
    require_operator(app, request)
    query = parse_qs(request.query_string, keep_blank_values=True)
    by, since = query.get("by"), query.get("since")
    if by is not None and by != ["workflow_version"]:
        raise ApiError(400, "invalid_query", f"by must be workflow_version, given once, or absent (got {_shown(by)})",
                       field="by")
    if since is not None and len(since) > 1:  # answering for the first would hide that the others were ignored
        raise ApiError(400, "invalid_query", f"since must be given once, or absent (got {_shown(since)})",
                       field="since")
    try:
        # with today's spend against the daily limit, whatever `since` is: what a create is refused by
        report = await compute(app.db, since[0] if since else None, by_workflow_version=by is not None,
                               today=(app.clock(), app.config.daily_spend_limit_usd),
                               client_limit_usd=app.config.client_daily_spend_limit_usd)
    except MetricsError as exc:
        raise ApiError(400, "invalid_since", str(exc), field="since") from None
    return json_response(200, report)


def _shown(values: list[str]) -> str:
    """A query parameter's values as a refusal names them: the first three, each cut to 64 characters."""
    return ", ".join(repr(value[:64]) for value in values[:3]) + (", ..." if len(values) > 3 else "")


def result_path(key: str) -> str:
    return "/api/result/" + quote(key, safe="/")


def signed_result_query(secret: str, key: str, expires: int) -> str:
    return f"exp={expires}&sig={result_signature(secret, key, expires)}"


def webhook_query(secret: str, job_id: str) -> str:
    return f"job={job_id}&sig={webhook_signature(secret, job_id)}"
