"""Review 29 (rel): two engineers on one machine. One runs `goldgate golden staging` (a re-run on the image STAGING
runs, say after a flaky case); the other runs `goldgate promote` meanwhile. The promotion gated on the report before
that run (it passed), and PROD took the digest while the run that would be its newest evidence was still going, and
may fail: "only the newest run for a digest counts" held only for runs that had ended. On the local target the gate
now holds STAGING's stack lock while it reads the pin and the report, so a golden run under way refuses the
promotion, naming the run, and nothing changes; once the run ends, the promotion gates on its report. `promote
--check` judges as the promotion will: it said "gate would pass" meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from release_support import StandInApi, invoke
from test_promotion_evidence import B, C, Target

import goldgate.commands.release as release_commands
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.lock import StackBusy, StackLock
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths


class LocalLocks(Target):
    """The in-process target with the local deployer's own hold on STAGING while the gate reads it."""

    def __init__(self, *args, home: Path, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.home = home

    gate_hold = getattr(LocalDeployer, "gate_hold", None)


def test_a_promotion_while_a_golden_run_of_staging_is_under_way_is_refused_naming_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    def make(api: StandInApi) -> LocalLocks:
        return LocalLocks(api, {}, home=tmp_path / "home")

    with released(tmp_path, paths, B, staging_passed=C, make=make) as r:
        entries = len(r.ledger.entries())
        with StackLock(r.home, "local", "staging", "golden", "a full golden run on staging"), \
                pytest.raises(StackBusy) as refused:
            promote(r.target, r.ledger, r.home, paths=paths)
        said = str(refused.value)
        assert said.startswith("a full golden run on staging holds staging (pid"), said
        assert "its report will be the newest evidence" in said and "nothing was promoted" in said, said
        assert r.target.pins["prod"] == B and len(r.ledger.entries()) == entries
        assert promote(r.target, r.ledger, r.home, paths=paths).ok      # the run over: its report is judged
    assert r.target.pins["prod"] == C


def test_a_golden_run_or_deploy_refused_by_a_gate_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    judged = "a promotion's gate is judging the image it runs"
    with StackLock(home, "local", "staging", "gate", "a promotion's gate reading staging"):
        with pytest.raises(StackBusy, match=f"{judged} .*nothing was run"), \
                StackLock(home, "local", "staging", "golden", "a full golden run on staging"):
            pass
        with pytest.raises(StackBusy, match=f"{judged} .*nothing was pinned"), \
                StackLock(home, "local", "staging", "deploy", "a deploy"):
            pass


def test_promote_check_judges_as_the_promotion_will_while_a_golden_run_is_under_way(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def make(api: StandInApi) -> LocalLocks:
        return LocalLocks(api, {}, home=tmp_path / "home")

    with released(tmp_path, paths, B, staging_passed=C, make=make) as r:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: r.target)
        argv = ("promote", "--check", "--home", str(r.home), "--report", str(paths.reports_dir / "latest.json"))
        with StackLock(r.home, "local", "staging", "golden", "a full golden run on staging"):
            code, out, err = invoke(capsys, *argv)
        assert code == 1 and "gate would pass" not in out, out
        assert "its report will be the newest evidence" in err, err
        code, out, _ = invoke(capsys, *argv)
    assert "gate would" in out    # the run over: judged on its report (this checkout's suite, not the test's)
