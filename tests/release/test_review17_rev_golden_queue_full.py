"""A golden run against a stack at its cap on jobs in flight (api.max_jobs_in_flight): the service answers 429
queue_full with Retry-After, having written nothing. The runner sends the create again with its key after the
wait, until the case's limit, instead of failing the case at once (a PROD smoke run met by a busy queue failed,
and its promotion rolled PROD back from a good image); a stack that stays full fails the case saying so."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from release_support import write_case
from test_golden_idempotent_create import IMAGE, TOKEN, Stack, golden
from test_golden_idempotent_create import stack as stack  # noqa: PLC0414 - the fixture, by its name

from goldgate.release import golden as golden_module
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds
from service.config import ServiceConfig

CAP = ServiceConfig.max_jobs_in_flight  # the live stack's: the default


def _fill(stack: Stack) -> None:
    """CAP jobs queued just now, none of them the run's: the stack is full."""
    now_ms = int(time.time() * 1000)
    conn = sqlite3.connect(stack.db_path)
    try:
        conn.executemany("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "created_at, created_at_ms, updated_at) VALUES (?, 'staging', 'sdxl-txt2img', 'v', '{}', "
                         "'t', 'queued', 'x', ?, 'x')", [(f"{n:032x}", now_ms) for n in range(CAP)])
        conn.commit()
    finally:
        conn.close()


def _drain(stack: Stack) -> None:
    conn = sqlite3.connect(stack.db_path)
    try:
        conn.execute("UPDATE jobs SET status = 'completed' WHERE workflow_version = 'v'")
        conn.commit()
    finally:
        conn.close()


def test_a_create_refused_queue_full_is_sent_again_after_its_retry_after_and_runs_once(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden_module, "QUEUE_FULL_WAIT_S", (0.5, 0.5))
    _fill(stack)
    refusals: list[float] = []
    retry_after_s = golden_module._retry_after_s

    def drained_after_the_first_refusal(resp):  # called by the runner for each 429 queue_full it is answered
        refusals.append(retry_after_s(resp))
        _drain(stack)  # some jobs ended meanwhile
        return refusals[-1]

    monkeypatch.setattr(golden_module, "_retry_after_s", drained_after_the_first_refusal)
    report = golden(stack, tmp_path, "lighthouse")
    assert report["passed"] is True, report["failures"]
    keys = stack.creates()
    assert refusals == [0.5] and len(keys) == 2 and len(set(keys)) == 1  # sent again once, with its key
    assert stack.jobs() == CAP + 1 and len(stack.runpod.runs) == 1


def test_a_stack_that_stays_full_fails_the_case_saying_so_and_creates_nothing(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden_module, "QUEUE_FULL_WAIT_S", (0.5, 0.5))
    _fill(stack)
    write_case(tmp_path / "cases", "full", "workflow: sdxl-txt2img\ninputs: {prompt: p}\nexpect: {max_latency_s: 3}\n")
    (tmp_path / "references").mkdir()
    started = time.monotonic()
    report = run_suite(load_cases(tmp_path / "cases"), ApiAccess(stack.url, TOKEN),
                       SuiteTarget("staging", "local", IMAGE, "golden-idem", Thresholds()),
                       references_dir=tmp_path / "references", poll_s=0.05, cover_workflows=False)
    error = report["cases"][0]["error"]
    assert report["passed"] is False
    assert "queue/create answered 429: queue_full" in error and "until too little of this case's limit, 3 s, was left" in error, error
    # Sent again at least once (about five times on a quiet machine: 0.5 s apart within 3 s; twice under heavy load).
    assert len(stack.creates()) >= 2 and stack.jobs() == CAP and stack.runpod.runs == []
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(("header", "seconds"), [("30", 30.0), ("0", 1.0), ("3600", 60.0), ("soon", 60.0),
                                                  ("inf", 60.0), ("nan", 60.0), (None, 60.0)])
def test_the_wait_is_the_services_retry_after_within_bounds(header: str | None, seconds: float) -> None:
    headers = {"retry-after": header} if header is not None else {}
    assert golden_module._retry_after_s(httpx.Response(429, headers=headers)) == seconds
