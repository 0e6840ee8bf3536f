"""A `goldgate golden staging --case <id>` run (one case, to look into it) after a passing full run does not close
the promotion gate when it passes: only a failing one does, as a failing smoke run does. Before, it counted as "a
later full run", and the gate's advice (gate on its report) could never pass (found by the session-28 final review)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from promotion_support import commands_on_stand_in
from release_support import invoke
from test_promotion_evidence import Target

from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64


def _args(home: Path, paths: GoldenPaths) -> tuple[str, ...]:
    return ("--home", str(home), "--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
            "--reports-dir", str(paths.reports_dir))


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    with commands_on_stand_in(monkeypatch) as stacks:
        yield stacks


def _failed_conditions(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths) -> tuple[int, list[str]]:
    code, out, _ = invoke(capsys, "promote", "--check", "--json", *_args(home, paths))
    return code, [c["name"] for c in json.loads(out)["conditions"] if not c["passed"]]


def test_a_passing_case_run_after_the_full_run_leaves_the_gate_open(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target) -> None:
    home = tmp_path / "home"
    assert invoke(capsys, "golden", "staging", *_args(home, paths))[0] == 0
    assert _failed_conditions(capsys, home, paths) == (0, [])
    code, out, _ = invoke(capsys, "golden", "staging", "--case", "square", *_args(home, paths))
    assert code == 0, out
    assert _failed_conditions(capsys, home, paths) == (0, [])


def test_a_failing_case_run_after_the_full_run_closes_it(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, target: Target) -> None:
    home = tmp_path / "home"
    assert invoke(capsys, "golden", "staging", *_args(home, paths))[0] == 0
    target.api.fail_workflows.add("wf-a")   # the jobs of the case's workflow fail
    code, out, _ = invoke(capsys, "golden", "staging", "--case", "square", *_args(home, paths))
    assert code != 0, out
    code, failed = _failed_conditions(capsys, home, paths)
    assert code == 1 and "report_recorded" in failed, failed
