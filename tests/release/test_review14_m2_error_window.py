"""STAGING's error rate is judged from the moment its image was deployed there, as the ledger records it. Under a
ledger key only an authenticated deploy says when that was: a deploy line appended without the key, dated after
STAGING's failures, would otherwise start the window after them and open the gate for an image that failed there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_gate_and_lock import A, Stacks

from goldgate.release import ledger as ledger_module
from goldgate.release.gate import ErrorRate, PromotionRefused
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.verification import GoldenPaths, run_golden

KEY = b"m2-test-ledger-key-0123456789abcdef"


class JobsOnStaging(Stacks):
    """STAGING's terminal jobs (created at, failed?): the error rate counts those created at or after `since`."""

    def __init__(self, api_url: str, pins: dict[str, str], jobs: list[tuple[datetime, bool]]) -> None:
        super().__init__(api_url, pins)
        self.jobs = jobs

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        counted = [failed for when, failed in self.jobs if when >= since]
        return ErrorRate(len(counted), sum(counted), since.isoformat())


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_deploy_line_appended_without_the_key_does_not_hide_stagings_failures(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home, now = tmp_path / "home", datetime.now(UTC).replace(microsecond=0)
    deployed, forged_at = now - timedelta(hours=2), now - timedelta(hours=1)
    keyed = Ledger(home, key=KEY)
    monkeypatch.setattr(ledger_module, "now_rfc3339", lambda: _stamp(deployed))
    keyed.append("deploy", stack="staging", target="local", before=None, after=A)
    # Two jobs failed on STAGING after the deploy; two passed later (the golden run's own).
    jobs = [(deployed + timedelta(minutes=30), True), (deployed + timedelta(minutes=31), True),
            (now - timedelta(minutes=5), False), (now - timedelta(minutes=4), False)]
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = JobsOnStaging(api.url, {"staging": A}, jobs)
        monkeypatch.setattr(ledger_module, "now_rfc3339", lambda: _stamp(now - timedelta(minutes=3)))
        assert run_golden(stacks, "staging", keyed, paths=paths, poll_s=0.01).passed
    latest = paths.reports_dir / "latest.json"
    decision = check_gate(stacks, keyed, latest, now=now)[0]
    assert [c.name for c in decision.conditions if not c.passed] == ["error_rate"]
    # Whoever can write the ledger file appends a deploy of the same image, dated after the failures.
    monkeypatch.setattr(ledger_module, "now_rfc3339", lambda: _stamp(forged_at))
    Ledger(home, key=b"not-the-key-" + b"x" * 32).append("deploy", stack="staging", target="local", before=A, after=A)
    decision = check_gate(stacks, keyed, latest, now=now)[0]
    assert [c.name for c in decision.conditions if not c.passed] == ["error_rate"]
    error_rate = next(c for c in decision.conditions if c.name == "error_rate")
    assert error_rate.detail.startswith(f"2 of 4 STAGING jobs failed since {deployed.isoformat()}")
    with pytest.raises(PromotionRefused, match="error_rate: 2 of 4 STAGING jobs failed"):
        promote(stacks, keyed, home, paths=paths, now=now)
    assert "prod" not in stacks.pins
