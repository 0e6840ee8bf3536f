"""Review 30 (rel): a release whose golden suite failed on STAGING ended "golden suite failed on staging; <image> is
not promoted and PROD is unchanged": what happened, and no next command. It now says what to do, as the gate's
report_passed says it: fix the cause and run the release again."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A
from test_review13_a2_release_summary import UpTarget, _release

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths


def test_a_release_whose_golden_suite_failed_names_the_next_command(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                     paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A, fail_workflows={"wf-b"})) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, err = _release(capsys, home, paths)
    assert code == 1 and "prod" not in target.pins
    built = next(e for e in reversed(Ledger(home).entries()) if e.kind == "build").get("image")
    said = (f"golden suite failed on staging; {built} is not promoted and PROD is unchanged: fix the cause (the "
            "failures above; the page shows each render beside its reference), then run `goldgate release "
            f"--workflow-version 2026.11.0 --cases-dir {paths.cases_dir} --references-dir {paths.references_dir} "
            f"--reports-dir {paths.reports_dir}` again")
    assert f"result       FAILED: {said}" in out.splitlines(), out
    # The error line says it too (cut in its middle past 600 characters, as every error line is).
    assert err.rstrip().splitlines()[-1].startswith(f"goldgate: error: {said[:80]}"), err
    assert err.rstrip().endswith("` again"), err
