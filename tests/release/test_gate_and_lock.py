"""The promotion gate's conditions, one at a time, and the one-change-at-a-time lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.lock import ReleaseLock, ReleaseLocked
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
THR = Thresholds(golden_mean_latency_s=360, error_rate=0.05, report_max_age_s=3600)


def report(**over: object) -> dict:
    base = {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": A,
            "passed": True, "failures": [], "finished_at": (NOW - timedelta(minutes=5)).isoformat(),
            "latency_s": {"mean": 12.5}}
    return {**base, **over}


def failed(decision) -> list[str]:
    return [c.name for c in decision.conditions if not c.passed]


def test_a_fresh_passing_report_for_the_staging_digest_passes() -> None:
    d = evaluate(report(), A, THR, ErrorRate(40, 1, "t"), now=NOW)
    assert d.passed and d.image == A and failed(d) == []


@pytest.mark.parametrize(("rep", "staging", "rate", "condition", "words"), [
    (report(image=B), A, ErrorRate(10, 0, "t"), "report_digest", "STAGING now runs " + A),
    (report(finished_at=(NOW - timedelta(hours=2)).isoformat()), A, ErrorRate(10, 0, "t"), "report_fresh",
     "7200 s ago (max 3600 s)"),
    (report(passed=False, failures=["sdxl: perceptual_hash: distance 30"]), A, ErrorRate(10, 0, "t"),
     "report_passed", "did not pass (sdxl: perceptual_hash"),
    (report(latency_s={"mean": 400.0}), A, ErrorRate(10, 0, "t"), "mean_latency", "400.0 s (max 360 s)"),
    (report(), A, ErrorRate(10, 2, "t"), "error_rate", "2 of 10 STAGING jobs failed"),
    (report(), A, None, "error_rate", "could not be read"),
    (report(stack="prod"), A, ErrorRate(10, 0, "t"), "report_stack", "expected 'staging'"),
    (report(suite="smoke"), A, ErrorRate(10, 0, "t"), "report_passed", "did not pass"),
    (report(finished_at="yesterday"), A, ErrorRate(10, 0, "t"), "report_fresh", "no readable finished_at"),
    (report(), None, ErrorRate(10, 0, "t"), "staging_image", "no image deployed"),
])
def test_each_failed_condition_is_refused_by_name(rep: dict, staging: str | None, rate: ErrorRate | None,
                                                  condition: str, words: str) -> None:
    d = evaluate(rep, staging, THR, rate, now=NOW)
    assert not d.passed and condition in failed(d)
    message = str(PromotionRefused(d))
    assert message.startswith("promotion refused: ") and condition in message and words in message


def test_a_malformed_report_is_refused_not_a_crash() -> None:
    d = evaluate({"latency_s": None, "failures": None}, A, THR, ErrorRate(0, 0, "t"), now=NOW)
    assert {"report_passed", "report_digest", "report_fresh", "mean_latency"} <= set(failed(d))


def test_a_second_holder_is_refused_with_who_holds_it(tmp_path: Path) -> None:
    with (ReleaseLock(tmp_path, "promote staging -> prod"),
          pytest.raises(ReleaseLocked, match=r"another promotion or rollback is running \(promote staging"),
          ReleaseLock(tmp_path, "rollback prod")):
        pass
    with ReleaseLock(tmp_path, "again"):  # released on exit
        pass


def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    code = ("import sys, os; from pathlib import Path; from goldgate.release.lock import ReleaseLock;"
            "l = ReleaseLock(Path(sys.argv[1]), 'doomed'); l.__enter__(); os._exit(3)")
    assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False, timeout=60).returncode == 3
    with ReleaseLock(tmp_path, "after a crash"):
        pass
