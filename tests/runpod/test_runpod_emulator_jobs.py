"""The emulator's serverless data plane with real runpod SDK workers: statuses, times, ttl, limits, scaling."""

from __future__ import annotations

import json
import time
from datetime import datetime

import httpx
import pytest
import runpod
from emulator_harness import API_KEY, wait_for

from goldgate.local.runpod import EmulatorConfig
from goldgate.local.runpod.backend import RunPodBackend, StartWorker
from goldgate.runpod import JobPolicy, RetryPolicy, RunPodNotFound, RunPodRateLimited, RunPodRejected


def test_a_job_runs_on_a_real_sdk_worker_with_runpod_times(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(env={"MARKER": "from-endpoint-env"})
    jobs = stack.jobs(ep.id)
    accepted = jobs.run({"prompt": "a cat"})
    assert accepted.status == "IN_QUEUE" and accepted.id.endswith("-u1")
    done = stack.finished(jobs, accepted.id)
    assert done.status == "COMPLETED"
    assert done.output["echo"] == {"prompt": "a cat"} and done.output["marker"] == "from-endpoint-env"
    assert isinstance(done.delay_time_ms, int) and done.delay_time_ms > 0  # includes the cold start
    assert isinstance(done.execution_time_ms, int) and done.execution_time_ms >= 0
    assert done.worker_id == done.output["worker"]
    health = jobs.health()
    assert health.jobs["completed"] == 1 and health.jobs["inQueue"] == 0


def test_handler_errors_and_exceptions_become_failed(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    failed = stack.finished(jobs, jobs.run({"fail": "model flux1-dev.safetensors missing"}).id)
    assert failed.status == "FAILED" and failed.error == "model flux1-dev.safetensors missing"
    assert failed.output is None
    raised = stack.finished(jobs, jobs.run({"raise": "boom"}).id)
    assert raised.status == "FAILED" and json.loads(raised.error)["error_message"] == "boom"
    assert jobs.health().jobs["failed"] == 2


def test_the_runpod_sdk_client_runs_a_job_against_the_emulator(make_stack, monkeypatch) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    monkeypatch.setattr(runpod, "endpoint_url_base", stack.emulator.endpoint_base)
    endpoint = runpod.Endpoint(ep.id, api_key=API_KEY)
    job = endpoint.run({"via": "runpod.Endpoint"})
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    output = job.output(timeout=60)
    assert output["echo"] == {"via": "runpod.Endpoint"}
    assert job.status() == "COMPLETED"
    assert endpoint.health()["jobs"]["completed"] == 1


def test_runsync_waits_for_the_result(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    result = stack.jobs(ep.id).runsync({"n": 7}, wait_ms=60_000)
    assert result.status == "COMPLETED" and result.output["echo"] == {"n": 7}


def test_ttl_expiry_deletes_the_job_so_status_is_404(make_stack) -> None:
    stack = make_stack(min_ttl_ms=100)
    ep = stack.endpoint(workers_max=0)  # nothing will ever take it
    jobs = stack.jobs(ep.id)
    job = jobs.run({"n": 1}, policy=JobPolicy(ttl_ms=500))
    # The run's own answer shows it queued: a /status asked after it may already come past the 0.5 s ttl
    # on a loaded machine.
    assert job.status == "IN_QUEUE"

    def gone() -> bool:
        try:
            jobs.status(job.id)
        except RunPodNotFound:
            return True
        return False

    wait_for(gone, "the job to expire")
    assert jobs.health().jobs["inQueue"] == 0
    assert _events(stack, "job.expired") == [{"runpod_job_id": job.id, "reason": "ttl"}]  # the ttl deleted it


def _events(stack, event: str) -> list[dict]:
    """The job and reason of each line of `event` in the emulator's log."""
    lines = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text().splitlines()
    return [{k: line.get(k) for k in ("runpod_job_id", "reason")}
            for line in map(json.loads, lines) if line["event"] == event]


# Log stamps are whole milliseconds, and a job's `job.finished` line is stamped a moment after it finished.
STAMP_SLACK_S = 0.01


def _seconds_kept(stack, job_id: str, reason: str) -> float:
    """From the emulator's log: seconds between the job's `job.finished` line and its drop for `reason`."""
    lines = [json.loads(line) for line in (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text().splitlines()]
    mine = [line for line in lines if line.get("runpod_job_id") == job_id]
    [finished] = [line["ts"] for line in mine if line["event"] == "job.finished"]
    [dropped] = [line["ts"] for line in mine if line["event"] == "job.expired" and line["reason"] == reason]
    return (datetime.fromisoformat(dropped) - datetime.fromisoformat(finished)).total_seconds()


def _kept_until_dropped(stack, jobs, job_id: str, reason: str, what: str) -> float:
    """Waits until /status no longer knows the job (`what` names that wait); the seconds its result was kept after
    it finished, by the emulator's log (`_seconds_kept`)."""
    def gone() -> bool:
        try:
            jobs.status(job_id)
        except RunPodNotFound:
            return True
        return False

    wait_for(gone, what)
    return _seconds_kept(stack, job_id, reason)


def test_finished_results_are_kept_only_for_the_retention_time(make_stack, receiver) -> None:
    stack = make_stack(result_retention_s=0.5)
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    job = jobs.run({"n": 1}, webhook=receiver.url)
    # Its webhook says it finished: polling /status for that could miss the 0.5 s it is kept on a loaded machine.
    assert wait_for(lambda: receiver.for_job(job.id), "the job to finish")[0].body["status"] == "COMPLETED"
    kept = _kept_until_dropped(stack, jobs, job.id, "result_retention_s", "the result to be dropped")
    assert kept >= 0.5 - STAMP_SLACK_S, f"the result was dropped {kept:.3f} s after the job finished, not 0.5 s"


def test_execution_timeout_times_out_and_stops_the_job_on_the_worker(make_stack) -> None:
    stack = make_stack(min_execution_timeout_ms=100)
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    slow = stack.finished(jobs, jobs.run({"sleep": 60}, policy=JobPolicy(execution_timeout_ms=1000)).id)
    assert slow.status == "TIMED_OUT" and slow.execution_time_ms >= 1000
    # the same (only) worker was told to stop that job and takes the next one
    nxt = stack.finished(jobs, jobs.run({"n": 2}).id)
    assert nxt.status == "COMPLETED" and nxt.worker_id == slow.worker_id


def test_run_beyond_the_rate_limit_is_429_with_retry_after(make_stack) -> None:
    stack = make_stack(rate_limit_requests=3, rate_limit_window_s=10.0)
    ep = stack.endpoint(workers_max=0)
    jobs = stack.jobs(ep.id, retry=RetryPolicy(attempts=1))
    for n in range(3):
        jobs.run({"n": n})
    with pytest.raises(RunPodRateLimited):
        jobs.run({"n": 3})
    raw = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/run", json={"input": {}},
                     headers={"Authorization": f"Bearer {API_KEY}"})
    assert raw.status_code == 429 and int(raw.headers["retry-after"]) >= 1 and "rate limit" in raw.json()["error"]


def test_cancel_retry_and_purge(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    jobs = stack.jobs(ep.id)
    a, b, c = (jobs.run({"n": n}).id for n in range(3))
    assert jobs.cancel(a).status == "CANCELLED" and jobs.status(a).status == "CANCELLED"
    with pytest.raises(RunPodRejected, match="only FAILED or TIMED_OUT"):
        jobs.retry(b)
    assert jobs.purge_queue() == 2
    with pytest.raises(RunPodNotFound):
        jobs.status(c)


def test_retry_requeues_a_failed_job_under_the_same_id(make_stack) -> None:
    from goldgate.local.runpod import FaultConfig

    stack = make_stack(faults=FaultConfig(failed_rate=1.0))  # first attempts fail; retries run for real
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    first = stack.finished(jobs, jobs.run({"n": 1}).id)
    assert first.status == "FAILED" and "faults.failed_rate" in first.error
    assert jobs.retry(first.id).status == "IN_QUEUE"
    again = stack.finished(jobs, first.id)
    assert again.status == "COMPLETED" and again.raw["retries"] == 1
    assert jobs.health().jobs["retried"] == 1


def test_retry_removes_the_previous_output_including_progress(make_stack, tmp_path) -> None:
    # RunPod: "When a job is retried, the previous output is removed ... /status ... will return no output
    # until the new job run is complete."
    stack = make_stack()
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    job = jobs.run({"progress_then_fail_once": str(tmp_path)}).id
    wait_for(lambda: jobs.status(job).raw.get("output") == "first attempt at 50%", "the first attempt's progress")
    (tmp_path / "release-1").touch()
    assert stack.finished(jobs, job).status == "FAILED"
    assert jobs.retry(job).status == "IN_QUEUE"
    second = wait_for(lambda: (s := jobs.status(job)).status == "IN_PROGRESS" and s, "the second attempt to start")
    assert "output" not in second.raw, second.raw
    (tmp_path / "release-2").touch()
    done = stack.finished(jobs, job)
    assert done.status == "COMPLETED" and done.output["echo"] == {"progress_then_fail_once": str(tmp_path)}


def test_runsync_results_are_kept_a_shorter_time_than_run_results(make_stack) -> None:
    # RunPod: jobs submitted via /run expire 30 minutes after completion, via /runsync 1 minute after.
    stack = make_stack(sync_result_retention_s=0.5)
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    synced = jobs.runsync({"n": 1}, wait_ms=60_000)
    assert synced.status == "COMPLETED"
    queued = stack.finished(jobs, jobs.run({"n": 2}).id)
    queued_done = time.monotonic()  # at or after the /run job finished
    kept = _kept_until_dropped(stack, jobs, synced.id, "sync_result_retention_s", "the /runsync result to be dropped")
    assert kept >= 0.5 - STAMP_SLACK_S, f"the /runsync result was dropped {kept:.3f} s after it finished, not 0.5 s"
    # Past the /runsync retention for the /run job too, by a few ticks: were it kept as briefly, it would be gone.
    time.sleep(max(0.0, queued_done + 0.5 + 0.3 - time.monotonic()))
    assert jobs.status(queued.id).status == "COMPLETED"  # the /run result is still kept
    assert EmulatorConfig().sync_result_retention_s == 60.0 and EmulatorConfig().result_retention_s == 1800.0


def test_bad_job_requests_are_clear_400s(make_stack) -> None:
    stack = make_stack(max_run_payload_bytes=1000)
    ep = stack.endpoint(workers_max=0)
    url = f"{stack.emulator.endpoint_base}/{ep.id}"
    h = {"Authorization": f"Bearer {API_KEY}"}
    cases = [({"nope": 1}, 400, "input"), ({"input": "text"}, 400, "input"),
             ({"input": {}, "webhook": "ftp://x"}, 400, "webhook"),
             ({"input": {}, "policy": {"ttl": -5}}, 400, "ttl"),
             ({"input": {"blob": "x" * 2000}}, 413, "limit")]
    for body, status, word in cases:
        r = httpx.post(f"{url}/run", json=body, headers=h)
        assert r.status_code == status and word in r.json()["error"], (body, r.text)
    assert httpx.post(f"{url}/run", content=b"{", headers=h).status_code == 400
    assert httpx.post(f"{url}/run", json={"input": {}}).status_code == 401
    assert httpx.get(f"{stack.emulator.endpoint_base}/nosuchep/health", headers=h).status_code == 404


def test_policies_outside_runpods_bounds_are_refused(make_stack) -> None:
    # RunPod: ttl 10 s .. 7 days, executionTimeout 5 s .. 7 days, lowPriority a boolean; a service configured
    # outside them must fail here, not only in the cloud.
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    h = {"Authorization": f"Bearer {API_KEY}"}
    week = 7 * 24 * 3600 * 1000
    for policy, word in [({"ttl": 9_999}, "ttl"), ({"ttl": week + 1}, "ttl"),
                         ({"executionTimeout": 4_999}, "executionTimeout"),
                         ({"executionTimeout": week + 1}, "executionTimeout"),
                         ({"lowPriority": "yes"}, "lowPriority")]:
        for route in ("run", "runsync"):
            r = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/{route}", json={"input": {}, "policy": policy},
                           headers=h)
            assert r.status_code == 400 and word in r.json()["error"], (route, policy, r.text)
    ok = stack.jobs(ep.id).run({"n": 1}, policy=JobPolicy(execution_timeout_ms=5_000, ttl_ms=10_000))
    assert ok.status == "IN_QUEUE"
    assert stack.jobs(ep.id).health().jobs["inQueue"] == 1


def test_numbers_beyond_a_double_are_refused_not_kept_as_infinity(make_stack) -> None:
    # 1e999 parses to inf in Python; kept, it would reach the worker and every webhook as non-JSON "Infinity".
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    h = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    for raw in (b'{"input": {"seed": 1e999}}', b'{"input": {"cfg": -1e400}}'):
        r = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/run", content=raw, headers=h)
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"], r.text
    assert stack.jobs(ep.id).health().jobs["inQueue"] == 0


def test_status_answers_post_as_well_as_get(make_stack) -> None:
    # RunPod's /status/{job_id} takes GET or POST (its docs' curl examples POST).
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    job = stack.jobs(ep.id).run({"n": 1})
    url = f"{stack.emulator.endpoint_base}/{ep.id}/status/{job.id}"
    h = {"Authorization": f"Bearer {API_KEY}"}
    got, posted = httpx.get(url, headers=h), httpx.post(url, headers=h)
    assert got.status_code == posted.status_code == 200
    assert posted.json() == got.json() == {"id": job.id, "status": "IN_QUEUE"}


def test_a_full_queue_refuses_new_jobs_with_429(make_stack) -> None:
    # RunPod: 429 once the queue holds more than 50 jobs and more than workers.max * 500.
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    jobs = stack.jobs(ep.id, retry=RetryPolicy(attempts=1))
    queued = [jobs.run({"n": n}).id for n in range(50)]
    with pytest.raises(RunPodRateLimited):
        jobs.run({"n": 50})
    r = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/runsync?wait=1000", json={"input": {}},
                   headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 429 and "queue" in r.json()["error"]
    jobs.cancel(queued[0])
    assert jobs.run({"n": 51}).status == "IN_QUEUE"  # room again once the queue is below the bound
    assert jobs.health().jobs["inQueue"] == 50


def test_cancel_and_purge_queue_have_runpods_own_rate_limits(make_stack) -> None:
    # RunPod: /purge-queue 2 and /cancel 100 requests per 10 s, each apart from /run's limit.
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    jobs = stack.jobs(ep.id, retry=RetryPolicy(attempts=1))
    assert jobs.purge_queue() == 0 and jobs.purge_queue() == 0
    with pytest.raises(RunPodRateLimited):
        jobs.purge_queue()
    job = jobs.run({"n": 1})
    for _ in range(100):
        assert jobs.cancel(job.id).status == "CANCELLED"
    with pytest.raises(RunPodRateLimited):
        jobs.cancel(job.id)
    assert jobs.run({"n": 2}).status == "IN_QUEUE"  # /run is limited on its own


def test_low_priority_jobs_do_not_scale_workers_up() -> None:
    # RunPod: "lowPriority: when true, job won't trigger worker scaling"; the scaling plan is the backend's.
    backend = RunPodBackend(EmulatorConfig())
    ep = backend.create_endpoint({"name": "e", "type": "QUEUE", "image": "img", "gpu": {"pools": ["ADA_24"]},
                                  "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}, "workers": {"min": 0, "max": 3}})
    for _ in range(3):
        backend.submit(ep.id, {"input": {}, "policy": {"lowPriority": True}}, 40)
    assert backend.plan() == []  # nothing starts for them alone
    backend.submit(ep.id, {"input": {}}, 10)
    assert [type(a) for a in backend.plan()] == [StartWorker]  # one for the normal job, none for the others


def test_workers_scale_with_the_queue_up_to_max_and_stop_when_idle(make_stack, tmp_path) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_min=0, workers_max=2, idle_timeout_s=1)
    jobs = stack.jobs(ep.id)
    gate = tmp_path / "gate"
    gate.mkdir()
    # Jobs held until released, not timed: a worker that started seconds before the other (a loaded machine)
    # cannot run all four before its peer takes one.
    ids = [jobs.run({"hold": str(gate), "n": n}).id for n in range(4)]
    peak = 0

    def in_progress() -> int:
        nonlocal peak
        peak = max(peak, len(stack.control.list_workers(ep.id).workers))
        return sum(jobs.status(i).status == "IN_PROGRESS" for i in ids)

    wait_for(lambda: in_progress() == 2, "two jobs held on two workers")
    (gate / "release").touch()
    wait_for(lambda: in_progress() == 0 and all(jobs.status(i).is_terminal for i in ids), "four jobs on two workers")
    assert peak == 2
    assert len({jobs.status(i).worker_id for i in ids}) == 2
    wait_for(lambda: not stack.control.list_workers(ep.id).workers, "idle workers to stop")
    assert list(stack.emulator.fleet.pids()) == []


def test_workers_min_keeps_a_warm_worker(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_min=1, workers_max=1, idle_timeout_s=1)
    worker = wait_for(lambda: [w for w in stack.control.list_workers(ep.id).workers if w.status == "IDLE"],
                      "a warm worker")
    job = stack.finished(stack.jobs(ep.id), stack.jobs(ep.id).run({"n": 1}).id)
    assert job.worker_id == worker[0].id
    assert [w.id for w in stack.control.list_workers(ep.id).workers] == [worker[0].id]


def test_worker_logs_go_to_the_logs_dir(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    job = stack.finished(stack.jobs(ep.id), stack.jobs(ep.id).run({"n": 1}).id)
    log = (stack.emulator.logs_dir / f"worker-{job.worker_id}.log").read_text()
    assert "Starting Serverless Worker" in log
    emulator_log = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    assert API_KEY not in emulator_log and stack.emulator.worker_token not in emulator_log


@pytest.mark.parametrize("body", [
    b'{"input": {"x": NaN}}', b'{"input": {"x": -Infinity}}',  # Python's json takes these; JSON does not
    b'{"input": {"deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
], ids=["nan", "infinity", "deep"])
def test_json_that_is_not_json_is_a_400_on_both_planes(make_stack, body: bytes) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    h = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    run = httpx.post(f"{stack.emulator.endpoint_base}/{ep.id}/run", content=body, headers=h)
    assert run.status_code == 400 and "not valid JSON" in run.json()["error"], run.text
    create = httpx.post(f"{stack.emulator.api_base}/serverless", content=body, headers=h)
    assert create.status_code == 400 and "not valid JSON" in create.json()["detail"], create.text
    assert stack.jobs(ep.id).health().jobs["inQueue"] == 0


def test_a_chunked_body_is_refused_as_such_not_read_as_empty(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_max=0)
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        sent = http.post(f"{stack.emulator.endpoint_base}/{ep.id}/run",
                         content=iter([b'{"input": {"n": 1}}']))  # an iterator body goes out chunked
        assert sent.request.headers["transfer-encoding"] == "chunked"
        assert sent.status_code == 411 and "Content-Length" in sent.json()["error"]
        assert sent.headers["connection"] == "close"  # the body is left unread: the pool must not reuse it
        assert http.get(f"{stack.emulator.endpoint_base}/{ep.id}/health").json()["jobs"]["inQueue"] == 0
