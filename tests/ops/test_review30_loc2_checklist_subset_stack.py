"""Review 30 (loc2): on a real STAGING, latest.json written by `goldgate golden staging --cases-dir <a subset>` is no
pass of every golden case on the checklist.

The run is recorded as suite "full" and writes latest.json as a full run does; `golden_all_pass` said "all 2 golden
cases passed" of it, while promote's gate refuses the very report (`report_cases`). The line now takes the gate's
verdict on the run that wrote the report, in its words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.release.cases import GOLDEN_DIR, load_cases

# a case of each shipped workflow: a run over them alone covers them all
SUBSET = ("flux-fox", "sdxl-defaults", "sdxl-img2img-landscape")


@pytest.mark.usefixtures("scan_once")
def test_a_latest_report_of_a_subset_run_on_a_real_stack_is_not_all_golden_cases(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    home, reports, subset = tmp_path / "home", tmp_path / "reports", tmp_path / "subset"
    subset.mkdir()
    for case in SUBSET:
        shutil.copy(GOLDEN_DIR / "cases" / f"{case}.yaml", subset)
    platform = LocalPlatform(home)
    try:
        ensure_up(platform, "staging")
        # Passes, and writes latest.json as a full run does (it covers every workflow the stack serves).
        assert main(["golden", "staging", "--cases-dir", str(subset), "--reports-dir", str(reports),
                     "--home", str(home)]) == 0
        capsys.readouterr()
        main(["checklist", "staging", "--offline", "--json", "--reports-dir", str(reports), "--home", str(home)])
        checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    finally:
        platform.down("staging")
    line = checks["golden_all_pass"]
    every = len(load_cases(GOLDEN_DIR / "cases"))
    # before: pass, "all 2 golden cases passed"
    assert line["status"] == "fail", line
    assert line["evidence"].startswith(f"all {len(SUBSET)} cases of the report passed, but golden run #"), line
    assert (f"ran {len(SUBSET)} of the {every} cases of scripts/golden-tests/cases (missing: "
            in line["evidence"]), line
