"""What a newcomer met on the release path: a golden run on PROD closed the gate (it rewrote latest.json), output
said `None` for a PROD with no release, a refusal called a newer release "earlier", an empty error-rate window
blamed the metrics instead of naming the missing golden run, and `history` showed smoke and full runs alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_cli_errors import run
from test_gate_and_lock import NOW, report
from test_promotion_evidence import Target, _released

from goldgate.release.gate import ErrorRate, evaluate
from goldgate.release.history import UnknownRelease
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_a_full_golden_run_on_prod_leaves_latest_json_and_the_gate_as_they_were(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A, "prod": A})
        staging = run_golden(target, "staging", ledger, paths=paths, poll_s=0.01)
        latest = paths.reports_dir / "latest.json"
        before = latest.read_bytes()
        prod = run_golden(target, "prod", ledger, paths=paths, poll_s=0.01)
        assert prod.passed and prod.path.exists() and prod.path != latest
        assert latest.read_bytes() == before
        assert check_gate(target, ledger, latest)[0].passed
        assert staging.path.exists()


def test_the_first_promotion_says_prod_ran_nothing_not_none(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    said: list[str] = []
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert promote(target, ledger, home, paths=paths, progress=said.append).ok
    [line] = [s for s in said if s.startswith("gate passed")]
    assert line.endswith("(was nothing: its first release)") and "None" not in line


def test_a_rollback_with_only_a_newer_release_left_does_not_call_it_earlier(tmp_path: Path,
                                                                            paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).ok        # PROD: B -> A, the older one
        with pytest.raises(UnknownRelease) as raised:
            rollback(target, ledger, home, paths=paths)
    message = str(raised.value)
    assert "earlier" not in message and f"prod runs {A}" in message and "--to" in message


def test_an_empty_error_rate_window_names_the_golden_run_to_make(tmp_path: Path) -> None:
    decision = evaluate(report(), A, Thresholds(), ErrorRate(0, 0, "2026-11-29T10:00:00Z"), now=NOW,
                        staging_stack="staging")
    [line] = [c.detail for c in decision.conditions if c.name == "error_rate"]
    assert "run `goldgate golden staging`" in line


def test_history_tells_a_smoke_run_from_a_full_run(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append("golden", stack="prod", image=A, suite="smoke", passed=True, trigger="user:t")
    ledger.append("golden", stack="prod", image=A, suite="full", passed=True, trigger="user:t")
    code, out, _ = run(capsys, tmp_path, "history")
    rows = [line.split() for line in out.splitlines() if " golden " in line]
    assert code == 0 and [row[3] for row in rows] == ["smoke", "full"], out


PLACEHOLDER = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64


def test_a_failed_first_promotion_does_not_roll_back_to_the_stack_files_placeholder(tmp_path: Path,
                                                                                   paths: GoldenPaths) -> None:
    """The shipped stack file pins an all-zero digest until the first release: a first promotion whose smoke failed
    "rolled back" to it, failed again (no such image; infra's preflight refuses it) and told the operator to roll
    back further, with nothing to roll back to."""
    home = tmp_path / "home"
    ledger = Ledger(home)
    said: list[str] = []
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A, "prod": PLACEHOLDER})
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        deployed: list[str] = []
        real = target.deploy
        target.deploy = lambda stack, image, progress: (deployed.append(f"{stack}={image}"),  # type: ignore[method-assign]
                                                        real(stack, image, progress))[1]
        api.fail_workflows.add("wf-a")            # the smoke case fails on PROD
        outcome = promote(target, ledger, home, paths=paths, progress=said.append)
    assert outcome.outcome == "smoke_failed" and outcome.rollback is None
    assert deployed == [f"prod={A}"]              # no deploy of the placeholder
    assert any(s.endswith("(was nothing: its first release)") for s in said)
