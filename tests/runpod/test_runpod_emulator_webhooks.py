"""Webhooks as RunPod sends them, and every injected fault, observed by a real receiver on loopback."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
from emulator_harness import wait_for

from goldgate.local.runpod import EmulatorConfig, FaultConfig, RunPodEmulator
from goldgate.local.runpod.eventlog import EventLog
from goldgate.local.runpod.faults import FaultPlan, draw
from goldgate.local.runpod.webhooks import WebhookDispatcher
from goldgate.runpod import JobPolicy

LOG_SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "logging-schema-v1.json").read_text())
PAYLOAD_KEYS = {"id", "status", "delayTime", "executionTime", "input", "webhook"}


def _hook(receiver, job: str = "svc-1") -> str:
    return f"{receiver.url}?job={job}&sig=deadbeef"


def test_completed_and_failed_post_runpods_payload_once(make_stack, receiver) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    ok = jobs.run({"job_id": "svc-1", "n": 1}, webhook=_hook(receiver, "svc-1"))
    bad = jobs.run({"job_id": "svc-2", "fail": "no checkpoint"}, webhook=_hook(receiver, "svc-2"))
    wait_for(lambda: receiver.for_job(ok.id) and receiver.for_job(bad.id), "both webhooks")
    [done] = receiver.for_job(ok.id)
    assert set(done.body) == PAYLOAD_KEYS | {"output"}
    assert done.body["status"] == "COMPLETED" and done.body["input"] == {"job_id": "svc-1", "n": 1}
    assert done.body["webhook"] == _hook(receiver, "svc-1") and done.query["sig"] == ["deadbeef"]
    assert isinstance(done.body["delayTime"], int) and isinstance(done.body["executionTime"], int)
    status = jobs.status(ok.id)
    assert (done.body["delayTime"], done.body["executionTime"]) == (status.delay_time_ms, status.execution_time_ms)
    [failed] = receiver.for_job(bad.id)
    assert set(failed.body) == PAYLOAD_KEYS | {"error"} and failed.body["error"] == "no checkpoint"
    # The sender records a delivery once the receiver's answer is back, a moment after the receiver has it.
    wait_for(lambda: len(stack.emulator.webhooks.history) == 2, "both deliveries recorded")
    assert [d.outcome for d in stack.emulator.webhooks.history] == ["ok", "ok"]


def test_cancelled_and_timed_out_send_no_webhook_by_default(make_stack, receiver) -> None:
    stack = make_stack(min_execution_timeout_ms=100)
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    slow = jobs.run({"sleep": 60}, webhook=_hook(receiver), policy=JobPolicy(execution_timeout_ms=500))
    queued = jobs.run({"n": 1}, webhook=_hook(receiver))
    jobs.cancel(queued.id)
    assert stack.finished(jobs, slow.id).status == "TIMED_OUT"
    marker = jobs.run({"n": 2}, webhook=_hook(receiver))  # a later COMPLETED proves the pipe is working
    wait_for(lambda: receiver.for_job(marker.id), "the marker webhook")
    assert receiver.for_job(slow.id) == [] and receiver.for_job(queued.id) == []


def test_cancelled_and_timed_out_webhooks_can_be_switched_on(make_stack, receiver) -> None:
    stack = make_stack(webhook_statuses=("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"), min_execution_timeout_ms=100)
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    slow = jobs.run({"sleep": 60}, webhook=_hook(receiver), policy=JobPolicy(execution_timeout_ms=500))
    queued = jobs.run({"n": 1}, webhook=_hook(receiver))
    jobs.cancel(queued.id)
    wait_for(lambda: receiver.for_job(slow.id) and receiver.for_job(queued.id), "both webhooks")
    assert receiver.for_job(slow.id)[0].body["status"] == "TIMED_OUT"
    assert receiver.for_job(queued.id)[0].body["status"] == "CANCELLED"


def test_a_non_200_answer_is_retried_twice_more_then_given_up(make_stack, receiver) -> None:
    stack = make_stack(webhook_retry_delay_s=0.3)
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    receiver.fail_first = 2
    saved = jobs.run({"n": 1}, webhook=_hook(receiver))
    wait_for(lambda: len(receiver.for_job(saved.id)) == 3, "three attempts")
    got = receiver.for_job(saved.id)
    assert got[1].at - got[0].at >= 0.3 and got[2].at - got[1].at >= 0.3  # RunPod's spacing, a lower bound
    receiver.fail_first = 10
    lost = jobs.run({"n": 2}, webhook=_hook(receiver))
    wait_for(lambda: [h for h in stack.emulator.webhooks.history if h.job_id == lost.id and h.attempt == 3],
             "the third attempt")
    outcomes = [h.outcome for h in stack.emulator.webhooks.history if h.job_id == lost.id]
    assert outcomes == ["http 500"] * 3
    assert len(receiver.for_job(lost.id)) == 3  # and no fourth


def test_duplicates_arrive_n_times(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(duplicate_deliveries=3))
    ep = stack.endpoint()
    job = stack.jobs(ep.id).run({"n": 1}, webhook=_hook(receiver))
    wait_for(lambda: len(receiver.for_job(job.id)) == 3, "three copies")
    bodies = [d.body for d in receiver.for_job(job.id)]
    assert bodies[0] == bodies[1] == bodies[2]


def test_a_dropped_first_delivery_is_saved_by_runpods_retry(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(drop_first_delivery_rate=1.0))
    ep = stack.endpoint()
    job = stack.jobs(ep.id).run({"n": 1}, webhook=_hook(receiver))
    wait_for(lambda: receiver.for_job(job.id), "the retried delivery")
    wait_for(lambda: any(h.job_id == job.id and h.attempt == 2 for h in stack.emulator.webhooks.history),
             "the retry recorded")
    history = [(h.attempt, h.outcome) for h in stack.emulator.webhooks.history if h.job_id == job.id]
    assert history == [(1, "dropped"), (2, "ok")]
    assert len(receiver.for_job(job.id)) == 1


def test_a_fully_dropped_webhook_never_arrives_and_status_still_tells(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(drop_all_deliveries_rate=1.0))
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    job = jobs.run({"n": 1}, webhook=_hook(receiver))
    assert stack.finished(jobs, job.id).status == "COMPLETED"  # what `goldgate recover` reads
    wait_for(lambda: any(h.job_id == job.id for h in stack.emulator.webhooks.history), "the drop to be recorded")
    assert [h.outcome for h in stack.emulator.webhooks.history if h.job_id == job.id] == ["dropped-all"]
    assert receiver.for_job(job.id) == []


def test_delayed_deliveries_arrive_no_sooner_than_the_delay(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(delivery_delay_s=1.0))
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    job = jobs.run({"n": 1}, webhook=_hook(receiver))
    stack.finished(jobs, job.id)
    wait_for(lambda: receiver.for_job(job.id), "the delayed webhook")
    finished_at = stack.emulator.backend.jobs[job.id].finished_mono  # same monotonic clock as the receiver
    assert receiver.for_job(job.id)[0].at - finished_at >= 1.0


def test_reordering_delivers_later_finished_jobs_first(make_stack, receiver) -> None:
    # Jobs finish close together (4 workers), each delivery is held 0..3 s by a draw on its job id: the holds,
    # not the finish order, decide the arrival order.
    faults = FaultConfig(reorder=True, reorder_window_s=3.0, seed=7)
    stack = make_stack(faults=faults)
    ep = stack.endpoint(workers_max=4)
    jobs = stack.jobs(ep.id)
    ids = [jobs.run({"n": n}, webhook=_hook(receiver)).id for n in range(12)]
    for i in ids:
        stack.finished(jobs, i)
    wait_for(lambda: all(receiver.for_job(i) for i in ids), "all webhooks")
    plan = FaultPlan(faults)
    finished = {i: stack.emulator.backend.jobs[i].finished_mono for i in ids}  # the receiver's clock too
    hold = {i: plan.hold_s(i, 0) for i in ids}
    holds = sorted(round(h, 3) for h in hold.values())
    arrived = {i: receiver.for_job(i)[0].at for i in ids}
    for i in ids:
        after = arrived[i] - finished[i]
        assert after >= hold[i], f"job {i} arrived {after:.3f} s after it finished, inside its {hold[i]:.3f} s hold"
    due = {i: finished[i] + hold[i] for i in ids}
    finished_order = sorted(ids, key=finished.__getitem__)
    assert sorted(ids, key=due.__getitem__) != finished_order, f"the holds {holds} keep the finish order"
    # A delivery due a second before another arrives first (a second: far more than a loopback POST takes).
    apart = [(a, b) for a in ids for b in ids if due[b] - due[a] >= 1.0]
    assert apart, f"no two deliveries due a second apart: holds {holds}"
    late = [(a, b) for a, b in apart if arrived[a] > arrived[b]]
    assert late == [], f"deliveries arrived out of their due order: {late}"
    arrival_order = [d.body["id"] for d in sorted(receiver.deliveries, key=lambda d: d.at)]
    assert arrival_order != finished_order and sorted(arrival_order) == sorted(finished_order)


def test_a_crashed_worker_requeues_its_job_once(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(worker_crash_rate=1.0))
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    job = jobs.run({"sleep": 1}, webhook=_hook(receiver))
    done = stack.finished(jobs, job.id)
    assert done.status == "COMPLETED"
    assert jobs.health().jobs["retried"] == 1
    log = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    assert '"event":"worker.crash_injected"' in log and '"event":"job.requeued"' in log


def test_a_crash_beyond_the_requeue_budget_fails_with_a_reason(make_stack, receiver) -> None:
    stack = make_stack(crash_requeues=0, faults=FaultConfig(worker_crash_rate=1.0))
    ep = stack.endpoint(workers_max=1)
    jobs = stack.jobs(ep.id)
    job = jobs.run({"sleep": 1}, webhook=_hook(receiver))
    done = stack.finished(jobs, job.id)
    assert done.status == "FAILED" and "exited" in done.error and "worker" in done.error
    wait_for(lambda: receiver.for_job(job.id), "the FAILED webhook")
    assert receiver.for_job(job.id)[0].body["status"] == "FAILED"


def test_injected_failures_name_the_injection(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(failed_rate=1.0))
    ep = stack.endpoint()
    job = stack.jobs(ep.id).run({"n": 1}, webhook=_hook(receiver))
    wait_for(lambda: receiver.for_job(job.id), "the FAILED webhook")
    body = receiver.for_job(job.id)[0].body
    assert body["status"] == "FAILED" and "faults.failed_rate" in body["error"]


def test_a_slow_cold_start_shows_in_delay_time(make_stack) -> None:
    stack = make_stack(faults=FaultConfig(cold_start_s=1.5))
    ep = stack.endpoint()
    jobs = stack.jobs(ep.id)
    job = jobs.run({"n": 1})
    wait_for(lambda: [w for w in stack.control.list_workers(ep.id).workers if w.status == "INITIALIZING"],
             "an initializing worker")
    assert stack.finished(jobs, job.id).delay_time_ms >= 1500


def test_fault_choices_are_fixed_by_the_seed() -> None:
    ids = [f"job-{n}" for n in range(200)]
    a = FaultPlan(FaultConfig(worker_crash_rate=0.25, seed=1))
    b = FaultPlan(FaultConfig(worker_crash_rate=0.25, seed=1))
    c = FaultPlan(FaultConfig(worker_crash_rate=0.25, seed=2))
    picked = [i for i in ids if a.crash(i)]
    assert picked == [i for i in ids if b.crash(i)] != [i for i in ids if c.crash(i)]
    assert 20 < len(picked) < 80
    assert draw(1, "x", "j") == draw(1, "x", "j") != draw(1, "y", "j")


def test_every_emulator_log_line_is_schema_v1_and_holds_no_secret(make_stack, receiver) -> None:
    stack = make_stack(faults=FaultConfig(drop_first_delivery_rate=1.0, worker_crash_rate=1.0), stack="staging")
    ep = stack.endpoint(env={"R2_SECRET_ACCESS_KEY": "s3cr3t-r2-value"})
    jobs = stack.jobs(ep.id)
    job = jobs.run({"job_id": "svc-9", "trace_id": "ab" * 16}, webhook=_hook(receiver))
    stack.finished(jobs, job.id)
    wait_for(lambda: receiver.for_job(job.id), "the webhook")
    stack.emulator.stop()
    text = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    validator = jsonschema.Draft202012Validator(LOG_SCHEMA)
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        errors = [e.message for e in validator.iter_errors(line)]
        assert errors == [], (line, errors)
    for secret in ("deadbeef", "s3cr3t-r2-value", stack.emulator.api_key, stack.emulator.worker_token):
        assert secret not in text
    started = [x for x in lines if x["event"] == "job.finished"]
    assert started and started[0]["job_id"] == "svc-9" and started[0]["trace_id"] == "ab" * 16


@pytest.mark.parametrize("bad", [{"duplicate_deliveries": 0}, {"failed_rate": 1.5}, {"cold_start_s": -1}])
def test_invalid_fault_settings_are_refused_by_name(bad) -> None:
    from goldgate.errors import SpecError
    with pytest.raises(SpecError, match=next(iter(bad))):
        FaultConfig(**bad)


def test_a_payload_that_cannot_be_sent_does_not_stop_later_webhooks(receiver, tmp_path: Path) -> None:
    # More unsendable payloads than sender threads; a good one after them must still arrive.
    config = EmulatorConfig(webhook_retry_delay_s=0.05, logs_dir=tmp_path)
    dispatcher = WebhookDispatcher(config, EventLog(io.StringIO(), None))
    try:
        for n in range(6):
            dispatcher.send(f"bad-{n}", _hook(receiver), {"id": f"bad-{n}", "status": "COMPLETED",
                                                          "output": {"x": float("nan")}})
        dispatcher.send("good", _hook(receiver), {"id": "good", "status": "COMPLETED", "output": {"x": 1}})
        wait_for(lambda: receiver.for_job("good"), "the good webhook")
        wait_for(lambda: dispatcher.pending() == 0, "every delivery to be settled")
        bad = [d for d in dispatcher.history if d.job_id.startswith("bad-")]
        assert bad and all(d.outcome.startswith("error") for d in bad)
    finally:
        dispatcher.stop()


def test_a_sender_still_posting_when_the_emulator_stops_logs_no_error(tmp_path: Path, monkeypatch) -> None:
    # stop() waits for the senders webhook_timeout_s + 1 s, then closes the log. A receiver trickling its answer
    # keeps a POST going past that; once it ends, the sender's outcome line has no open log to go to.
    raised: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", raised.append)
    answering, release = threading.Event(), threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            answering.set()
            sent = 0
            while sent < 999 and not release.wait(0.1):  # a byte at a time, well within the sender's read timeout
                self.wfile.write(b" ")
                self.wfile.flush()
                sent += 1
            self.wfile.write(b" " * (1000 - sent))

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        emu = RunPodEmulator(EmulatorConfig(api_key="k" * 24, logs_dir=tmp_path, webhook_timeout_s=0.5,
                                            webhook_drain_s=0)).start()
        hook = f"http://127.0.0.1:{server.server_address[1]}/api/runpod/webhook"
        emu.webhooks.send("job-1", hook, {"id": "job-1", "status": "COMPLETED"})
        wait_for(answering.is_set, "the receiver to start answering")
        emu.stop()
        release.set()
        wait_for(lambda: not any(t.is_alive() for t in emu.webhooks._threads), "the senders to end")
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    assert [f"{a.thread.name}: {a.exc_type.__name__}: {a.exc_value}" for a in raised] == []
    assert [h.job_id for h in emu.webhooks.history] == ["job-1"]  # the POST did end after stop()
    last = json.loads((tmp_path / "runpod-emulator.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "runpod_emulator.stopped"


def test_lines_logged_after_close_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path.open("a", encoding="utf-8"), "staging")
    log.info("runpod_emulator.stopped")
    log.close()
    log.warning("webhook.gave_up", runpod_job_id="job-1")  # a sender thread's late outcome
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["runpod_emulator.stopped"]
