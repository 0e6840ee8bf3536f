"""The promotion gate's conditions, one at a time, and the one-change-at-a-time lock."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from release_support import TOKEN, StandInApi, golden_suite, standin_api

from goldgate.release.gate import ErrorRate, PromotionRefused, evaluate
from goldgate.release.golden import ApiAccess
from goldgate.release.ledger import Ledger
from goldgate.release.lock import ReleaseLock, ReleaseLocked
from goldgate.release.promote import check_gate, promote
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
THR = Thresholds(golden_mean_latency_s=360, error_rate=0.05, report_max_age_s=3600)


def report(**over: object) -> dict:
    base = {"schema": "goldgate.golden-report.v1", "suite": "full", "stack": "staging", "image": A,
            "passed": True, "failures": [], "finished_at": (NOW - timedelta(minutes=5)).isoformat(),
            "latency_s": {"mean": 12.5}, "references_updated": False, "workflow_version": "2026.11.0"}
    return {**base, **over}


def failed(decision) -> list[str]:
    return [c.name for c in decision.conditions if not c.passed]


RECORDED = {"kind": "golden", "seq": 7, "stack": "staging", "image": A, "suite": "full", "passed": True}


def test_a_fresh_passing_report_for_the_staging_digest_passes() -> None:
    d = evaluate(report(), A, THR, ErrorRate(40, 1, "t"), now=NOW, recorded=RECORDED)
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
    (report(), A, ErrorRate(0, 0, "t"), "error_rate", "no STAGING jobs recorded since t"),
    (report(stack="prod"), A, ErrorRate(10, 0, "t"), "report_stack", "expected 'staging'"),
    (report(suite="smoke"), A, ErrorRate(10, 0, "t"), "report_passed", "did not pass"),
    (report(finished_at="yesterday"), A, ErrorRate(10, 0, "t"), "report_fresh", "no readable finished_at"),
    (report(), None, ErrorRate(10, 0, "t"), "staging_image", "no image deployed"),
    (report(references_updated=True), A, ErrorRate(10, 0, "t"), "report_references", "--update-references"),
    (report(references_updated=None), A, ErrorRate(10, 0, "t"), "report_references", "--update-references"),
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


class Stacks:
    """What the gate reads of a deployer: the pins, thresholds, STAGING's API and its error rate."""

    target = "local"

    def __init__(self, api_url: str, pins: dict[str, str]) -> None:
        self.api_url, self.pins = api_url, pins

    def current_image(self, stack: str) -> str | None:
        return self.pins.get(stack)

    def spec(self, stack: str) -> SimpleNamespace:  # each stack's role is its name, as in stacks/local.yaml
        return SimpleNamespace(thresholds=Thresholds(), role=stack, workflow_version="2026.11.0")

    def api_access(self, stack: str) -> ApiAccess:
        return ApiAccess(self.api_url, TOKEN)

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        return ErrorRate(10, 0, "t")


def test_a_failed_report_edited_to_pass_does_not_open_the_gate(tmp_path: Path) -> None:
    suite, home = golden_suite(tmp_path / "golden"), tmp_path / "home"
    paths = GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references", reports_dir=suite / "reports")
    ledger, latest = Ledger(home), paths.reports_dir / "latest.json"
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = Stacks(api.url, {"staging": A})
        assert run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert check_gate(stacks, ledger, latest)[0].passed        # the report the run wrote opens the gate
        api.fail_workflows.add("wf-b")
        assert not run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01).passed
    edited = json.loads(latest.read_text())
    edited.update(passed=True, failures=[])
    latest.write_text(json.dumps(edited))
    decision = check_gate(stacks, ledger, latest)[0]
    assert failed(decision) == ["report_recorded"]
    with pytest.raises(PromotionRefused, match="report_recorded: no golden run in the ledger wrote this report"):
        promote(stacks, ledger, home, paths=paths)
    assert "prod" not in stacks.pins
