"""A re-run of an older CI run must not put its older build on PROD over a newer release that landed since: the
promote job takes main's PROD stack file only when main's pin is an earlier build than this run's digest (two
pushes close together), never a later one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.release.ledger import Ledger
from goldgate.release.main_pins import ProdFileNotMains, check_prod_file, read_stack_file

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64
BEFORE = "ghcr.example/acme/worker@sha256:" + "0" * 63 + "1"   # what PROD ran before either run
OLDER = "ghcr.example/acme/worker@sha256:" + "a" * 64          # the earlier run's build
NEWER = "ghcr.example/acme/worker@sha256:" + "b" * 64          # the later run's build, released


def stack_file(path: Path, image: str) -> Path:
    text = (REPO / "stacks" / "Pulumi.prod.yaml").read_text(encoding="utf-8").replace(PLACEHOLDER, image)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def build(ledger: Ledger, image: str, commit: str) -> None:
    ledger.append("build", image=image, release_id=f"v1-g{commit}-m0", git_commit=commit, trigger="test")


def golden(ledger: Ledger, report: Path, image: str) -> None:
    ledger.append("deploy", stack="staging", target="cloud", before=None, after=image, image=image, trigger="test")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"image": image, "stack": "staging", "passed": True}))
    ledger.append("golden", stack="staging", image=image, suite="full", passed=True,
                  report_sha256=hashlib.sha256(report.read_bytes()).hexdigest())


def promoted(ledger: Ledger, image: str, before: str) -> None:
    fields = {"stack": "prod", "image": image, "before": before, "trigger": "test"}
    ledger.append("promotion", phase="intent", **fields)
    ledger.append("promotion", phase="outcome", after=image, pinned=image, prod_image=image, outcome="promoted",
                  **fields)


class Rerun:
    """Run 1 built OLDER and its staging job failed; run 2 built NEWER and released it (main pins NEWER on PROD).
    Then "Re-run failed jobs" on run 1: its staging job qualifies OLDER again, after run 2's promotion, and its
    promote job checks out run 1's commit, whose PROD file still pins BEFORE."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.ledger = Ledger(self.home)
        build(self.ledger, OLDER, "1111111")
        build(self.ledger, NEWER, "2222222")
        golden(self.ledger, tmp_path / "run2" / "latest.json", NEWER)
        promoted(self.ledger, NEWER, BEFORE)
        self.report = tmp_path / "run1" / "latest.json"
        golden(self.ledger, self.report, OLDER)
        self.ours = stack_file(tmp_path / "run1" / "stacks" / "Pulumi.prod.yaml", BEFORE)
        self.mains = stack_file(tmp_path / "main" / "Pulumi.prod.yaml", NEWER)


def test_a_rerun_of_an_older_run_never_takes_mains_pin_of_a_newer_release(tmp_path: Path) -> None:
    # Before: main's pin was explained by a promotion recorded before this (re-run) golden run, so main's file was
    # taken and `goldgate promote --image OLDER` replaced the newer release on PROD with the older build.
    rerun = Rerun(tmp_path)
    with pytest.raises(ProdFileNotMains, match=rf"main's PROD pin {NEWER} was built after this run's digest "
                                               rf"{OLDER} \(ledger #2, after #1\)"):
        check_prod_file(read_stack_file(rerun.ours), read_stack_file(rerun.mains), rerun.ledger.entries(),
                        rerun.report)


def test_check_prod_file_stops_a_rerun_promote_job_in_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    rerun = Rerun(tmp_path)
    code = main(["check-prod-file", "--main-file", str(rerun.mains), "--stack-file", str(rerun.ours), "--report",
                 str(rerun.report), "--home", str(rerun.home)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "promoting this run's digest would undo that newer release" in err and "start a new run from main" in err


def test_a_pin_on_main_whose_build_the_ledger_never_recorded_stops_the_promotion(tmp_path: Path) -> None:
    # Without the build, nothing tells whether main's pin is older or newer than this run's digest: fail closed.
    ledger = Ledger(tmp_path / "home")
    build(ledger, NEWER, "2222222")
    promoted(ledger, OLDER, BEFORE)
    report = tmp_path / "latest.json"
    golden(ledger, report, NEWER)
    ours = read_stack_file(stack_file(tmp_path / "ours.yaml", BEFORE))
    mains = read_stack_file(stack_file(tmp_path / "mains.yaml", OLDER))
    with pytest.raises(ProdFileNotMains, match=rf"the ledger records no build of {OLDER}"):
        check_prod_file(ours, mains, ledger.entries(), report)


def test_the_second_of_two_pushes_still_takes_mains_pin_of_the_earlier_build(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    build(ledger, OLDER, "1111111")
    golden(ledger, tmp_path / "run1" / "latest.json", OLDER)
    build(ledger, NEWER, "2222222")
    promoted(ledger, OLDER, BEFORE)
    report = tmp_path / "run2" / "latest.json"
    golden(ledger, report, NEWER)
    ours = read_stack_file(stack_file(tmp_path / "ours.yaml", BEFORE))
    mains = read_stack_file(stack_file(tmp_path / "mains.yaml", OLDER))
    assert check_prod_file(ours, mains, ledger.entries(), report).mains == OLDER
