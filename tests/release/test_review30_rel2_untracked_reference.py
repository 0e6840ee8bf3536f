"""Review 30 (rel2): a golden run that compared with a reference image git does not hold as committed says so, naming
the file and `git add`, and still passes. Only `promote` said it before (report_references_match), after the run's
summary had said PASSED."""

from __future__ import annotations

import subprocess
from pathlib import Path

from release_support import StandInApi, standin_api
from test_gate_and_lock import A, Stacks

from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden


def _git(where: Path, *argv: str) -> None:
    subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *argv], check=True, capture_output=True)


def test_a_run_against_an_untracked_reference_warns_naming_it_and_git_add(tmp_path: Path,
                                                                          paths: GoldenPaths) -> None:
    suite = paths.cases_dir.parent
    _git(suite, "init", "-q")
    _git(suite, "add", "cases", "references/batch.png")   # square.png: made by a golden run, never added
    _git(suite, "commit", "-qm", "suite")
    said: list[str] = []
    with standin_api(StandInApi(image_tag=A)) as api:
        run = run_golden(Stacks(api.url, {"staging": A}), "staging", Ledger(tmp_path / "home"), paths=paths,
                         poll_s=0.01, progress=said.append)
    assert run.passed                                      # a warning, not a failure
    warned = [line for line in said if line.startswith("warning:") and "reference" in line]
    assert len(warned) == 1, said
    assert "square.png is untracked" in warned[0] and "batch.png" not in warned[0], warned[0]
    assert f"`git -C {paths.references_dir} add square.png`" in warned[0], warned[0]
    assert "`goldgate promote` refuses" in warned[0], warned[0]
