"""`goldgate release`'s summary counts a failed golden run as `goldgate golden` does: "FAILED: 6 cases" read as six
failures when two of the six had passed. It also names the run's HTML page, where a failed image check is seen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A
from test_review13_a2_release_summary import UpTarget, _release

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths


def test_a_failed_golden_run_is_summed_up_as_how_many_cases_passed_of_how_many(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A, fail_workflows={"wf-b"})) as api:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: UpTarget(api, {}))
        code, out, _err = _release(capsys, home, paths)
    assert code == 1
    golden = next(e for e in reversed(Ledger(home).entries()) if e.kind == "golden")
    report = json.loads(Path(golden.get("report")).read_text())
    cases, passed = len(report["cases"]), sum(c["passed"] is True for c in report["cases"])
    assert 0 < passed < cases, report["cases"]   # some of each, or the wording below would not be told apart
    assert re.search(rf"^golden +FAILED: {passed} of {cases} cases passed$", out, re.MULTILINE), out
    page = re.search(r"^ +page +(\S+)$", out, re.MULTILINE)
    assert page and Path(page[1]).is_file() and page[1].endswith(".html"), out
