"""Review 30 (rel): a release engineer's refusals from the release path's locks. `goldgate promote --check` (a dry
check that never promotes) refused during a golden run of STAGING with "nothing was promoted", as if it could have;
and every lock refusal ended "wait for it to finish and try again", naming no command, while the brief of each
refusal is what happened and the next command. Now a check says its gate was not judged and names
`goldgate promote --check`, a promotion names `goldgate promote`, a rollback `goldgate rollback` (with its --to), a
golden run of PROD `goldgate golden prod`, and each says nothing was changed (or run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from promotion_support import released
from release_support import StandInApi, invoke
from test_promotion_evidence import A, B, C, Target

import goldgate.commands.release as release_commands
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.lock import ReleaseLock, ReleaseLocked, StackBusy, StackLock
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


class LocalLocks(Target):
    """The in-process target with the local deployer's own hold on STAGING while the gate reads it."""

    def __init__(self, *args, home: Path, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.home = home

    gate_hold = LocalDeployer.gate_hold


def test_promote_check_refused_by_a_golden_run_says_its_gate_was_not_judged_and_names_the_check(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def make(api: StandInApi) -> LocalLocks:
        return LocalLocks(api, {}, home=tmp_path / "home")

    with released(tmp_path, paths, B, staging_passed=C, make=make) as r:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: r.target)
        argv = ("promote", "--check", "--home", str(r.home), "--report", str(paths.reports_dir / "latest.json"))
        with StackLock(r.home, "local", "staging", "golden", "a full golden run on staging"):
            code, out, err = invoke(capsys, *argv)
    assert code == 1 and "gate would" not in out, out
    assert "nothing was promoted" not in err, err
    assert "its report will be the newest evidence" in err, err
    assert "the gate was not judged: wait for it to finish, then run `goldgate promote --check` again" in err, err


def test_a_promotion_refused_by_a_golden_run_of_staging_names_the_promote_to_run_again(
        tmp_path: Path, paths: GoldenPaths) -> None:
    def make(api: StandInApi) -> LocalLocks:
        return LocalLocks(api, {}, home=tmp_path / "home")

    with released(tmp_path, paths, B, staging_passed=C, make=make) as r, \
            StackLock(r.home, "local", "staging", "golden", "a full golden run on staging"), \
            pytest.raises(StackBusy) as refused:
        promote(r.target, r.ledger, r.home, paths=paths)
    assert str(refused.value).endswith(
        "nothing was promoted: wait for it to finish, then run `goldgate promote` again"), refused.value


def test_a_golden_run_refused_by_a_promote_check_names_the_check(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = LocalLocks(StandInApi(image_tag=A), {}, home=home)
    with holder.gate_hold("staging", check=True), pytest.raises(StackBusy) as refused, \
                StackLock(home, "local", "staging", "golden", "a full golden run on staging"):
        pass
    said = str(refused.value)
    assert said.startswith("a `promote --check` reading staging holds staging (pid"), said
    assert "a `promote --check` is judging the image it runs" in said and "nothing was run" in said, said


def test_a_rollback_refused_while_a_promotion_runs_names_the_rollback_to_run_again(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B) as r:
        entries = len(r.ledger.entries())
        with ReleaseLock(r.home, "promote staging -> prod"), pytest.raises(ReleaseLocked) as refused:
            rollback(r.target, r.ledger, r.home, to=A)
        assert r.target.pins["prod"] == B and len(r.ledger.entries()) == entries
    said = str(refused.value)
    assert said.startswith("another promotion or rollback is running (promote staging -> prod, pid"), said
    assert f"nothing was changed: wait for it to finish, then run `goldgate rollback --to {A}` again" in said, said


def test_a_promotion_refused_by_a_golden_run_of_prod_names_the_promote_to_run_again(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, B, staging_passed=C) as r:
        with ReleaseLock(r.home, "golden prod", kind="golden"), pytest.raises(ReleaseLocked) as refused:
            promote(r.target, r.ledger, r.home, paths=paths)
        assert r.target.pins["prod"] == B
    said = str(refused.value)
    assert said.startswith("a golden run of PROD is running (golden prod, pid"), said
    assert "nothing was changed: wait for it to finish, then run `goldgate promote` again" in said, said


def test_a_golden_run_of_prod_refused_by_a_promotion_names_itself_to_run_again(tmp_path: Path) -> None:
    with ReleaseLock(tmp_path, "promote staging -> prod"), pytest.raises(ReleaseLocked) as refused, \
            ReleaseLock(tmp_path, "golden prod", kind="golden", again="goldgate golden prod"):
        pass
    assert "nothing was run: wait for it to finish and run the golden tests again (`goldgate golden prod`)" in str(
        refused.value)


@pytest.mark.parametrize(("argv", "again"), [
    (["/venv/bin/goldgate", "promote", "--reports-dir", "/r"], "goldgate promote --reports-dir /r"),
    (["/venv/bin/goldgate", "release"], "goldgate promote"),    # its promotion refused: no rebuild to run again
])
def test_the_command_to_run_again_keeps_the_options_it_was_typed_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], again: str) -> None:
    with ReleaseLock(tmp_path, "rollback prod"):
        monkeypatch.setattr("sys.argv", argv)
        with pytest.raises(ReleaseLocked) as refused, ReleaseLock(tmp_path, "promote staging -> prod",
                                                                  again="goldgate promote"):
            pass
    assert f"wait for it to finish, then run `{again}` again" in str(refused.value), refused.value

