"""`goldgate status prod` says when PROD serves (or, down, is pinned to) a release whose last golden run there, a
smoke run, failed: as promote and rollback say it, from the release ledger (its last golden run of that image on
PROD). `--json` carries it as `smoke_failed` (null when it does not apply). The ledger is read from its end, so a
long one costs `status` no full read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

BROKEN = "local/worker@sha256:" + "a" * 64
GOOD = "local/worker@sha256:" + "b" * 64


def _golden(ledger: Ledger, stack: str, image: str, passed: bool, suite: str = "smoke") -> int:
    failures = [] if passed else ["smoke-sdxl: job failed: CUDA out of memory"]
    return ledger.append("golden", stack=stack, target="local", image=image, suite=suite, passed=passed,
                         role=stack, failures=failures, trigger="test").seq


def _status(home: Path, capsys: pytest.CaptureFixture[str], stack: str = "prod") -> tuple[dict, str]:
    capsys.readouterr()
    assert main(["status", stack, "--home", str(home), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["status", stack, "--home", str(home)]) == 0
    return data, capsys.readouterr().out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_prod_pinned_to_a_release_whose_smoke_failed_there_is_said_in_text_and_json(home, capsys):
    ledger = Ledger(home)
    StackDir(home, "prod").pin(BROKEN, reason="promotion: smoke failed, the rollback cut short")
    seq = _golden(ledger, "prod", BROKEN, passed=False)
    # Entries after it, over a megabyte (the ledger is read from its end a chunk at a time): still found.
    for n in range(3):
        ledger.append("build", image=f"local/worker@sha256:{n:064x}", notes="x" * 400_000)
    _golden(ledger, "staging", BROKEN, passed=True)   # another stack's pass is no verdict on PROD
    _golden(ledger, "prod", GOOD, passed=True)        # nor another image's

    data, text = _status(home, capsys)
    warning = data["smoke_failed"]
    assert warning and BROKEN in warning and f"ledger #{seq}" in warning, data
    assert "smoke run failed there" in warning and "`goldgate rollback`" in warning
    assert "CUDA out of memory" in warning  # its first failure
    assert f"  {'SMOKE FAILED':<22} {warning}" in text.splitlines(), text

    _golden(ledger, "prod", BROKEN, passed=True)  # a later smoke run of it there passed: nothing to say
    data, text = _status(home, capsys)
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text


def test_no_warning_for_a_good_release_for_staging_or_without_a_ledger(home, capsys):
    StackDir(home, "prod").pin(GOOD, reason="test")
    data, text = _status(home, capsys)   # no ledger at all
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text
    ledger = Ledger(home)
    _golden(ledger, "prod", GOOD, passed=True)
    StackDir(home, "staging").pin(BROKEN, reason="test")
    _golden(ledger, "staging", BROKEN, passed=False, suite="full")  # a candidate STAGING rejected: its normal day
    assert _status(home, capsys)[0]["smoke_failed"] is None
    data, text = _status(home, capsys, "staging")
    assert data["smoke_failed"] is None and "SMOKE FAILED" not in text


def test_a_release_that_passed_prod_before_is_not_sent_back_past_by_the_advice(home, capsys):
    """A failed promotion whose automatic rollback's smoke failed too (a fault of PROD's own, the RUNBOOK's rehearsal)
    leaves PROD on the earlier release with a failed smoke. That release passed there before: plain `goldgate
    rollback` would take PROD back past it to an older one, so the line offers `rollback --to` it once the cause is
    fixed (found by the session-28 upgrade journey)."""
    ledger = Ledger(home)
    StackDir(home, "prod").pin(GOOD, reason="promotion: smoke failed, its rollback's smoke failed")
    passed = _golden(ledger, "prod", GOOD, passed=True)      # its own promotion's smoke
    _golden(ledger, "prod", BROKEN, passed=False)            # the candidate's smoke
    failed = _golden(ledger, "prod", GOOD, passed=False)     # the automatic rollback's smoke: PROD's fault

    warning = _status(home, capsys)[0]["smoke_failed"]
    assert f"ledger #{failed}" in warning and f"passed there before (ledger #{passed})" in warning, warning
    assert f"`goldgate rollback --to {GOOD}`" in warning, warning
