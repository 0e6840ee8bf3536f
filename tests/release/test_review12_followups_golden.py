"""A smoke run by hand on STAGING that fails (here: a reference image is missing) is a warning in the release log,
not the error a failed smoke run on PROD is; and the advice for the missing reference is the command to type, with
the stack and the references directory of the run, not `goldgate golden <stack> --update-references`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target

from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


def _smoke_without_references(tmp_path: Path, paths: GoldenPaths, stack: str) -> tuple[dict, list[dict]]:
    """A smoke run on `stack` whose references directory has lost its images: the run fails on them."""
    for reference in paths.references_dir.iterdir():
        reference.unlink()
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        run = run_golden(Target(api, {"staging": A, "prod": A}), stack, Ledger(home), suite="smoke", paths=paths,
                         poll_s=0.01)
    assert not run.passed
    lines = [json.loads(t) for t in (home / "logs" / "release.jsonl").read_text().splitlines()]
    return run.report, lines


def _golden_line(lines: list[dict]) -> dict:
    [line] = [line for line in lines if line["data"]["kind"] == "golden"]
    return line


@pytest.mark.parametrize(("stack", "level"), [("staging", "warning"), ("prod", "error")])
def test_a_failed_smoke_run_is_an_error_only_on_prod(tmp_path: Path, paths: GoldenPaths, stack: str,
                                                     level: str) -> None:
    _, lines = _smoke_without_references(tmp_path, paths, stack)
    line = _golden_line(lines)
    # Before: an error on STAGING too, paging someone for a hand run that changed nothing.
    assert (line["event"], line["level"], line["stack"]) == ("release.golden_failed", level, stack)
    assert line["data"]["suite"] == "smoke"


def test_the_golden_ledger_entry_records_the_stacks_role(tmp_path: Path, paths: GoldenPaths) -> None:
    _smoke_without_references(tmp_path, paths, "staging")
    [entry] = [e for e in Ledger(tmp_path / "home").entries() if e.kind == "golden"]
    assert entry.get("role") == "staging"


def test_the_missing_reference_advice_names_the_stack_and_the_references_directory(
        tmp_path: Path, paths: GoldenPaths) -> None:
    report, _ = _smoke_without_references(tmp_path, paths, "staging")
    details = [check["detail"] for case in report["cases"] for check in case["checks"]
               if check["name"] == "perceptual_hash" and not check["passed"]]
    assert details
    command = (f"goldgate golden staging --update-references --references-dir {shlex.quote(str(paths.references_dir))}"
               f" --reports-dir {shlex.quote(str(paths.reports_dir))}")
    # Before: `goldgate golden <stack> --update-references`, which, typed as it reads, wrote the references into
    # scripts/golden-tests/references instead of the directory this run compares with.
    assert all(detail.endswith(f"create it deliberately with `{command}`") for detail in details), details
