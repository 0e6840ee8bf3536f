"""Several jobs at once, each sent RunPod's deliveries of every status in any order, repeated, from more than one
attempt (RunPod's /retry re-runs a job under the same id: the service learns of the new attempt only from its
deliveries, whose timings and output differ), by webhook or by an operator's recovery (RunPod's /status answer, or
its 404 for a job it forgot), with result objects that are missing, of the wrong size or of the wrong type. After
every step the job, its recorded deliveries, its metrics row and the step's log line agree with a model of the rules
in docs/WEBHOOK_SEMANTICS.md, "Deliveries", written here from the documentation alone."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import BUCKET, LosesTheRunPodIdWrite, svc  # noqa: F401 - the fixture

from service import cost
from service.ports import StoreUnavailable

RANK = {"IN_QUEUE": 0, "IN_PROGRESS": 1, "COMPLETED": 2, "FAILED": 2, "CANCELLED": 2, "TIMED_OUT": 2}
STATUS = {"IN_QUEUE": "queued", "IN_PROGRESS": "in_progress", "COMPLETED": "completed", "FAILED": "failed",
          "CANCELLED": "cancelled", "TIMED_OUT": "timed_out"}
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}
MIRRORED = ("status", "runpod_queue_duration_ms", "runpod_run_duration_ms", "e2e_ms", "worker_image_tag",
            "workflow_version", "gpu_type", "cost_estimate_usd", "created_at")
GPU = "NVIDIA GeForce RTX 4090"
# Job 0 and 1 have their RunPod id recorded; job 2's was lost (its webhook adopts the id); job 3's /run got a 5xx,
# so it is failed on our guess (RunPod may have taken it: its outcome replaces the guess).
JOBS = 4
# What a COMPLETED reports against the store: the object as stored, one never stored, one whose size differs, one
# stored as text/plain, one reported as a type other than the stored one.
RESULTS = ("good", "missing", "size", "stored_type", "reported_type")

deliver = st.tuples(st.just("deliver"), st.integers(0, JOBS - 1),
                    st.integers(0, 2),  # the attempt: a /retry's new run has other timings
                    st.sampled_from(list(RANK)), st.sampled_from(RESULTS),
                    st.sampled_from(["own", "own", "own", "other"]),  # the job's RunPod id, or job 0's
                    st.booleans(),  # the same attempt told again with another delayTime (a /status answer may)
                    st.booleans())  # brought by an operator's recovery instead of a webhook
repeat = st.tuples(st.just("repeat"), st.integers(0, 40))  # a delivery sent before, sent again (RunPod retries)
forget = st.tuples(st.just("forget"), st.integers(0, JOBS - 1))  # RunPod forgot the job; an operator recovers it
# The worker stores the output it returns (results/<job>/outcome.json), naming the RunPod job it ran as.
stored = st.tuples(st.just("stored"), st.integers(0, JOBS - 1), st.sampled_from(["own", "own", "other"]),
                   st.sampled_from(RESULTS))
late = st.tuples(st.just("late"))  # the clock passes every job's deadline: RunPod has deleted any job for it
down = st.tuples(st.just("down"))  # the result store does not answer during the next step
noise = st.one_of(deliver, deliver, deliver, repeat, forget, stored, late, down)


@st.composite
def runs(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """What RunPod sends for each job's life, its attempts one after another (each attempt but the last failed or
    timed out, and an operator ran /retry), the jobs interleaved, then shuffled a little and repeated: the order
    deliveries of a real run arrive in, more often than arbitrary steps reach it."""
    steps: list[tuple[Any, ...]] = []
    for j in range(JOBS):
        attempts = draw(st.integers(1, 3))
        for attempt in range(attempts):
            last = attempt == attempts - 1
            end = draw(st.sampled_from(["COMPLETED", "COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"] if last
                                       else ["FAILED", "TIMED_OUT"]))
            result = draw(st.sampled_from(["good", "good", *RESULTS[1:]]))
            lost = last and draw(st.booleans())  # its webhook never came: RunPod forgets it, an operator recovers
            for runpod_status in ("IN_QUEUE", "IN_PROGRESS", end):
                if runpod_status == end and draw(st.booleans()):
                    steps.append(("down",))  # R2 is out when the outcome arrives
                if runpod_status == end and lost:
                    continue
                if runpod_status == end or draw(st.booleans()):  # RunPod's webhook comes at the end only
                    steps.append(("deliver", j, attempt, runpod_status, result, "own", False,
                                  runpod_status != end or draw(st.booleans())))
            if end == "COMPLETED":  # its worker stored the outcome
                steps.append(("stored", j, "own", result))
            if lost or draw(st.booleans()):
                steps.append(("forget", j))
    random = draw(st.randoms(use_true_random=False))
    random.shuffle(steps) if draw(st.booleans()) else _swap_some(random, steps)
    for _ in range(draw(st.integers(0, 4))):
        steps.insert(random.randrange(len(steps) + 1), random.choice(steps))
    extra = draw(st.lists(noise, max_size=6))
    for action in extra:
        steps.insert(random.randrange(len(steps) + 1), action)
    return steps


def _swap_some(random: Any, steps: list[tuple[Any, ...]]) -> None:
    for _ in range(random.randrange(4)):
        i = random.randrange(len(steps))
        k = min(len(steps) - 1, i + random.randrange(1, 4))
        steps[i], steps[k] = steps[k], steps[i]


@dataclass
class JobModel:
    """The documented rules for one job."""

    job_id: str
    rid: str | None  # the RunPod id the service has recorded
    own: str  # the RunPod id RunPod gave the job
    status: str = "queued"
    seen: dict[str, str] = field(default_factory=dict)  # delivery identity -> the reason it was recorded with
    usd: float | None = None
    last_applied: str | None = None  # RunPod's status in the last applied delivery
    results: list[str] = field(default_factory=list)
    outcome: dict[str, Any] | None = None  # the outcome its worker stored
    applied: int = 0  # deliveries applied
    run_ms: int | None = None  # RunPod's executionTime: the ending delivery's, or null

    def apply(self, identity: str, rid: str | None, runpod_status: str, execution_ms: int | None, good: bool,
              held: bool) -> tuple[bool, str]:
        if identity in self.seen:
            return False, "duplicate"
        reason = self._decide(rid, runpod_status, held)
        self.seen[identity] = reason
        if reason != "applied":
            return False, reason
        new = STATUS[runpod_status]
        if new in TERMINAL:
            attempt = cost.estimate_usd(execution_ms, GPU, 1, None)
            if self.rid is not None and self.status in TERMINAL:  # replaces RunPod's own outcome
                if self.last_applied == "COMPLETED":  # rejected results: the same attempt, priced once
                    self.usd = self.usd if self.usd is not None else attempt
                else:  # the attempt RunPod ran after a /retry: RunPod bills both
                    self.usd = cost.attempts_usd(self.usd, attempt)
            else:
                self.usd = attempt
        self.rid = self.rid or rid
        # a running job's executionTime is its run so far: kept only while it runs
        self.run_ms = execution_ms if execution_ms is not None or new in TERMINAL else self.run_ms
        self.status = "failed" if new == "completed" and not good else new
        self.last_applied = runpod_status
        self.applied += 1
        return True, "applied"

    def _decide(self, rid: str | None, runpod_status: str, held: bool) -> str:
        if self.rid is not None and rid != self.rid:
            return "runpod_id_mismatch"
        new = STATUS[runpod_status]
        if self.status in TERMINAL:
            if RANK[runpod_status] < 2:
                return "out_of_order"
            guessed = self.rid is None and self.status == "failed" and rid is not None
            if not (new == "completed" and self.status in ("failed", "timed_out")) and not guessed:
                return "no_change" if new == self.status == "completed" else "terminal_conflict"
        else:
            current = {"queued": 0, "in_progress": 1}[self.status]
            if RANK[runpod_status] < current:
                return "out_of_order"
            if new == self.status:
                return "no_change"
        if self.rid is None and held:
            return "runpod_job_taken"
        return "applied"


class _StoredImages:
    """What each RESULTS kind reports for one job: the image stored as results/<job>/0.png, a text/plain object as
    1.png, or 9.png, never stored. An object is stored the first time a step reports it (before the step), not for
    every job of every example: the service reads only the keys a delivery or a stored outcome names (it never lists
    the store), and each put is a signed S3 round trip to moto (each example stored all eight before)."""

    def __init__(self, svc, job_id: str) -> None:  # noqa: F811
        self.svc, self.job_id = svc, job_id
        self.objects: dict[str, dict[str, Any]] = {}  # file name -> the object as put_result described it

    def _stored(self, name: str) -> dict[str, Any]:
        if name not in self.objects:
            self.objects[name] = (self.svc.put_result(self.job_id, name) if name == "0.png" else
                                  self.svc.put_result(self.job_id, name, data=b"not an image at all",
                                                      content_type="text/plain"))
        return self.objects[name]

    def __getitem__(self, result: str) -> dict[str, Any]:
        if result == "missing":  # described as put_result describes the image, at a key never stored
            return {"key": f"results/{self.job_id}/9.png", "content_type": "image/png",
                    "bytes": len(b"\x89PNG fake image bytes"), "sha256": "0" * 64, "width": 8, "height": 8}
        if result == "stored_type":
            return {**self._stored("1.png"), "content_type": "image/png"}
        image = self._stored("0.png")
        return {"good": image, "size": {**image, "bytes": image["bytes"] + 1},
                "reported_type": {**image, "content_type": "image/jpeg"}}[result]


def _payload(rid: str, runpod_status: str, attempt: int, result: dict[str, Any], jitter: bool) -> dict[str, Any]:
    execution_ms = 1000 * (attempt + 1) + 100
    payload: dict[str, Any] = {"id": rid, "status": runpod_status, "delayTime": 312 if jitter else 300}
    if runpod_status != "IN_QUEUE":
        payload["executionTime"] = execution_ms
    if runpod_status == "COMPLETED":
        payload["output"] = {"images": [result], "gpu_type": GPU, "timings": {"total_ms": execution_ms}}
    elif runpod_status == "FAILED":
        payload["error"] = f"attempt {attempt} failed"
    return payload


@settings(max_examples=75, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.one_of(runs(), st.lists(noise, min_size=1, max_size=24)))
def test_deliveries_of_several_jobs_in_any_order_keep_the_documented_invariants(svc, steps):  # noqa: F811
    log_lines = svc.app.log.sink.__self__  # the test's log capture (a fixture argument would be printed whole)
    ids = [svc.create()["job_id"] for _ in range(2)]
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    try:
        ids.append(svc.create()["job_id"])
    finally:
        svc.app.db = svc.db
    svc.fake.run_mode = "error"
    try:
        status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                  "inputs": {"prompt": "a lighthouse"}})
    finally:
        svc.fake.run_mode = "accept"
    assert status == 503, body
    ids.append(body["error"]["job_id"])
    models = [JobModel(job_id, svc.runpod_id(job_id), svc.runpod_id(job_id) or f"rp-own-{job_id}") for job_id in ids]
    models[3].status = "failed"
    assert models[2].rid is None and models[3].rid is None and None not in (models[0].rid, models[1].rid)
    images = [_StoredImages(svc, job_id) for job_id in ids]
    sent: list[tuple[int, dict[str, Any], bool]] = []  # (job, payload, results good) of every delivery sent
    store = svc.app.transitions.store
    rows = [svc.job(model.job_id) for model in models]  # each job's row as the last check read it
    for previous, action in zip([None, *steps], steps, strict=False):
        rows_before = [(model.applied, row) for model, row in zip(models, rows, strict=True)]
        svc.app.store = svc.app.transitions.store = StoreDown() if previous == ("down",) else store
        if action[0] == "deliver":
            _, j, attempt, runpod_status, result, which, jitter, recovered = action
            model = models[j]
            rid = model.own if which == "own" else models[0].own
            payload = _payload(rid, runpod_status, attempt, images[j][result], jitter)
            _step(svc, log_lines, models, j, payload, result == "good", recovered)
            sent.append((j, payload, result == "good"))
        elif action[0] == "repeat" and sent:
            j, payload, good = sent[action[1] % len(sent)]
            _step(svc, log_lines, models, j, payload, good, recovered=False)
        elif action[0] == "forget":
            _forgotten(svc, log_lines, models[action[1]])
        elif action[0] == "stored" and models[action[1]].outcome is None:  # a worker stores it once
            _, j, which, result = action
            model = models[j]
            model.outcome = {"runpod_job_id": model.own if which == "own" else models[0].own,
                             "output": {"images": [images[j][result]], "gpu_type": GPU}, "good": result == "good"}
            svc.s3.put_object(Bucket=BUCKET, Key=f"results/{model.job_id}/outcome.json",
                              Body=json.dumps({k: v for k, v in model.outcome.items() if k != "good"}).encode(),
                              ContentType="application/json")
        elif action[0] == "late":
            svc.clock[0] = max(_deadline_s(svc.job(m.job_id)) for m in models) + 1
        svc.app.store = svc.app.transitions.store = store
        rows = [_check_job(svc, model) for model in models]
        for now, model, (applied, row) in zip(rows, models, rows_before, strict=True):
            if model.applied == applied:  # a delivery not applied (or another job's) changes nothing
                assert now == row


def _step(svc, log_lines, models: list[JobModel], j: int, payload: dict[str, Any], good: bool,  # noqa: F811
          recovered: bool) -> None:
    model = models[j]
    rid = payload["id"]
    held = rid != model.own and model.rid is None  # job 0's id, which job 0 holds
    if recovered and rid != model.own:
        recovered = False  # an operator recovers a job by its own id: RunPod's /status answer is for that id
    body_sent = None
    if recovered:
        svc.fake.set_status(rid, {k: v for k, v in payload.items() if k != "id"} | {"id": rid})
        if model.rid is None:  # the operator names the id the job.runpod_id_unrecorded line gave
            body_sent = {"runpod_job_id": rid}
            if RANK[payload["status"]] < 2:  # an unrecorded id is adopted only from an outcome
                before = len(log_lines)
                status, body, _ = svc.call("POST", f"/api/admin/recover/{model.job_id}", body_sent)
                assert (status, body["error"]["code"]) == (409, "runpod_job_unfinished"), body
                _check_line(log_lines[before:], model.job_id, "job.recover_failed", "runpod_job_unfinished")
                return
    identity = json.dumps(payload, sort_keys=True)
    execution_ms = payload.get("executionTime")
    after = copy.deepcopy(model)
    applied, reason = after.apply(identity, rid, payload["status"], execution_ms, good, held)
    before = len(log_lines)
    if recovered:
        status, body, _ = svc.call("POST", f"/api/admin/recover/{model.job_id}", body_sent)
    else:
        status, body, _ = svc.deliver(model.job_id, payload)
    if applied and payload["status"] == "COMPLETED" and isinstance(svc.app.store, StoreDown):
        # its results cannot be checked: nothing is recorded, and RunPod retries (or the operator recovers again)
        assert (status, body["error"]["code"]) == (503, "store_unavailable"), body
        _check_line(log_lines[before:], model.job_id, "job.recover_failed" if recovered else "webhook.refused",
                    "store_unavailable")
        return
    models[j] = model = after
    assert status == 200, (payload, body)
    assert (body["applied"], body["reason"], body["status"]) == (applied, reason, model.status), (payload, body)
    if applied and model.status == "completed":
        model.results = [payload["output"]["images"][0]["key"]]
    elif applied:
        model.results = []
    _check_line(log_lines[before:], model.job_id, _event(reason, model, payload), reason)


def _forgotten(svc, log_lines, model: JobModel) -> None:  # noqa: F811
    """RunPod answers 404 for the job's id (its ttl passed) and an operator recovers it: from the outcome its worker
    stored when that names the job's RunPod id, else the job is recorded FAILED; by the same rules as a webhook."""
    svc.fake.jobs.pop(model.own, None)
    expected = _forgotten_delivery(svc, model)
    before = len(log_lines)
    status, body, _ = svc.call("POST", f"/api/admin/recover/{model.job_id}")
    if isinstance(svc.app.store, StoreDown):  # the worker's stored outcome cannot be read: nothing changes
        assert (status, body["error"]["code"]) == (503, "store_unavailable"), body
        _check_line(log_lines[before:], model.job_id, "job.recover_failed", "store_unavailable")
        return
    if isinstance(expected, str):  # refused: nothing changes
        assert (status, body["error"]["code"]) == (409, expected), body
        _check_line(log_lines[before:], model.job_id, "job.recover_failed", expected)
        return
    identity, rid, runpod_status, good = expected
    applied, reason = model.apply(identity, rid, runpod_status, None, good, False)
    assert status == 200, body
    assert (body["applied"], body["reason"], body["status"]) == (applied, reason, model.status), body
    if applied:
        model.results = [model.outcome["output"]["images"][0]["key"]] if model.status == "completed" else []
    _check_line(log_lines[before:], model.job_id, _event(reason, model, {"status": runpod_status}), reason)


def _forgotten_delivery(svc, model: JobModel) -> tuple[str, str | None, str, bool] | str:  # noqa: F811
    """(identity, RunPod id, RunPod status, results good) of what a recovery of a forgotten job applies, or the
    code of its 409."""
    named = model.outcome["runpod_job_id"] if model.outcome else None
    if model.rid is None and named is None:  # nothing vouches for an id
        if svc.clock[0] < _deadline_s(svc.job(model.job_id)):
            return "not_submitted"
        return "expired", None, "FAILED", False
    if model.rid is None and named != model.own:
        return "runpod_job_taken"  # the outcome names job 0's RunPod id, which job 0 holds
    if named == (model.rid or model.own):
        return f"from store {named}", named, "COMPLETED", model.outcome["good"]
    return f"forgotten {model.rid} {named}", model.rid, "FAILED", False


class StoreDown:
    """The result store, not answering (R2 has outages): every call raises as the S3 store does then."""

    async def head(self, key: str) -> None:
        raise StoreUnavailable(f"HEAD {key}: connection refused")

    async def get(self, key: str) -> None:
        raise StoreUnavailable(f"GET {key}: connection refused")

    async def read_at_most(self, key: str, limit: int) -> None:
        raise StoreUnavailable(f"GET {key}: connection refused")


def _deadline_s(job: dict[str, Any]) -> float:
    """When RunPod has deleted any job it took for `job` (docs/RUNBOOK: policy.ttl, the /run timeout, 10 minutes)."""
    return (job["created_at_ms"] + job["policy_ttl_ms"] + job["run_timeout_ms"] + 600_000) / 1000


def _event(reason: str, model: JobModel, payload: dict[str, Any]) -> str:
    if reason != "applied":
        return f"webhook.{reason}"
    if payload["status"] == "COMPLETED" and model.status == "failed":
        return "job.result_rejected"
    return "job.finished" if model.status in TERMINAL else "job.progress"


def _check_line(lines: list[str], job_id: str, event: str, reason: str) -> None:
    """The request's one line names the job, and says what became of the delivery."""
    mine = [json.loads(line) for line in lines]
    assert len(mine) == 1, mine
    assert (mine[0]["job_id"], mine[0]["event"], mine[0]["reason"]) == (job_id, event, reason), mine[0]
    if reason in ("out_of_order", "terminal_conflict", "runpod_id_mismatch", "runpod_job_taken"):
        assert mine[0]["level"] == "warning", mine[0]


def _check_job(svc, model: JobModel) -> dict[str, Any]:  # noqa: F811
    """The job's row, read once after the step (the next step's row before: nothing between two steps writes it),
    checked against the model with its metrics row and recorded deliveries."""
    job = svc.job(model.job_id)
    assert (job["status"], job["runpod_job_id"], job["runpod_run_duration_ms"]) == (model.status, model.rid,
                                                                                    model.run_ms)
    assert job["cost_estimate_usd"] == (model.usd if model.status in TERMINAL else None)
    assert [r["key"] for r in json.loads(job["results_json"] or "[]")] == model.results
    metrics = svc.rows(f"SELECT {', '.join(MIRRORED)}, images FROM job_metrics WHERE job_id = ?", (model.job_id,))
    if model.status in TERMINAL:  # one row, describing the job as its own row does
        assert metrics == [{**{column: job[column] for column in MIRRORED}, "images": len(model.results)}]
    else:
        assert metrics == []
    recorded = svc.rows("SELECT outcome, applied FROM webhook_deliveries WHERE job_id = ? ORDER BY received_at, "
                        "rowid", (model.job_id,))
    assert sorted(r["outcome"] for r in recorded) == sorted(model.seen.values())
    assert all(r["applied"] == (r["outcome"] == "applied") for r in recorded)
    return job
