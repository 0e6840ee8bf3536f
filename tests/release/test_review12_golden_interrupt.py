"""Ctrl-C during a golden run: the run stops at once instead of polling every case in flight on to its latency
limit (10 minutes by default) while the operator waits for the prompt, writes no report (latest.json stays the gate's
evidence as it was) and records no golden run, and says so."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api, write_case
from test_promotion_partial_failure import A, Recorded

from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

CASE_LIMIT_S = 3  # how long the old runner went on polling after Ctrl-C: each case's own latency limit
POLL_S = 0.05


def _polls(api: StandInApi) -> int:
    return sum(job["polls"] for job in list(api.jobs.values()))


def _ctrl_c_once_a_job_is_polled(api: StandInApi, done: threading.Event, seen: list[int]) -> None:
    """SIGINT to this process (as a terminal's Ctrl-C) once the first case's job has been polled a few times."""
    while not done.is_set():
        if _polls(api) >= 3:
            seen.append(_polls(api))
            os.kill(os.getpid(), signal.SIGINT)
            return
        done.wait(0.01)


def test_ctrl_c_stops_the_run_at_once_and_writes_no_report(tmp_path: Path, paths: GoldenPaths) -> None:
    for name, prompt in (("square", "p1"), ("batch", "p2")):
        write_case(paths.cases_dir, name, f"workflow: wf-a\ninputs: {{prompt: {prompt}}}\n"
                                          f"expect: {{max_latency_s: {CASE_LIMIT_S}}}\n")
    ledger = Ledger(tmp_path / "home")
    said: list[str] = []
    with standin_api(StandInApi(image_tag=A, polls_before_done=10**9)) as api:   # the jobs never end
        target = Recorded(api, {"staging": A})
        done, seen = threading.Event(), []
        watcher = threading.Thread(target=_ctrl_c_once_a_job_is_polled, args=(api, done, seen))
        watcher.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run_golden(target, "staging", ledger, paths=paths, poll_s=POLL_S, concurrency=1,
                           progress=said.append)
        finally:
            done.set()
            watcher.join()
        polled_after = _polls(api) - seen[0]
    # Stopped where it was: at most the poll under way when the key was pressed, and the next one. The old runner
    # polled on until the case's limit (CASE_LIMIT_S / POLL_S, some 60 polls).
    assert polled_after <= 2, f"{polled_after} status polls after Ctrl-C"
    assert len(api.jobs) == 1          # the case not started yet was not sent (nor billed)
    assert not paths.reports_dir.exists() or list(paths.reports_dir.iterdir()) == []
    assert [e for e in ledger.entries() if e.kind == "golden"] == []
    assert said[-1] == (f"interrupted: no report written ({paths.reports_dir / 'latest.json'} is as it was); the "
                        "jobs already queued on staging run on to their end")
