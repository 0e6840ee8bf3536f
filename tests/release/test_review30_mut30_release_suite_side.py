"""Review 30 mutation audit (mut30): a release whose golden suite failed only on the suite's side (STAGING serves a
workflow no case runs) is not the image's fault: its last line says what to add to the suite and names the golden
run and the promotion of the image already built, not "fix the cause ... run `goldgate release` again" (a rebuild
that would fail the same way)."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A
from test_review13_a2_release_summary import UpTarget, _release

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths


def test_a_release_failed_by_an_uncovered_workflow_names_the_suites_fix(monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture,
                                                                         tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", "wf-new"])) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, _err = _release(capsys, home, paths)
    assert code == 1 and "prod" not in target.pins
    built = next(e for e in reversed(Ledger(home).entries()) if e.kind == "build").get("image")
    last = next(line for line in out.splitlines() if line.startswith("result "))   # in full: not cut as stderr's
    assert "the image is not at fault: add a case for wf-new" in last, last
    given = f" --cases-dir {paths.cases_dir} --references-dir {paths.references_dir} --reports-dir {paths.reports_dir}"
    assert last.endswith(f"then run `goldgate golden staging{given}` and `goldgate promote{given} --image {built}`"), last
    assert "goldgate release` again" not in last, last
