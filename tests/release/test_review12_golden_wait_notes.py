"""A golden case whose job does not finish (its webhook lost) says so while it waits, with the recovery that settles
it: before, the run was silent until the case's limit (10 minutes by default)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from release_support import TOKEN, StandInApi, golden_suite, standin_api
from test_golden_runner import target

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, run_suite


def _run(tmp_path: Path, stack_target: str) -> tuple[dict, list[str]]:
    golden_dir = golden_suite(tmp_path)
    lines: list[str] = []
    suite_target = dataclasses.replace(target(golden_case_latency_s=1.5), target=stack_target)
    with standin_api(StandInApi(polls_before_done=10**6)) as api:  # every job stays in progress
        report = run_suite(load_cases(golden_dir / "cases"), ApiAccess(api.url, TOKEN), suite_target,
                           references_dir=golden_dir / "references", poll_s=0.01, progress=lines.append,
                           note_every_s=0.3)
    return report, lines


def test_a_job_still_running_is_named_with_the_local_recovery_while_the_case_waits(tmp_path: Path) -> None:
    report, lines = _run(tmp_path, "local")
    assert report["passed"] is False
    waiting = [line for line in lines if " still in_progress after " in line]
    assert waiting, lines
    job_id = report["cases"][0]["job_id"]
    assert any(line.endswith(f"if its webhook was lost: goldgate recover {job_id} --stack staging")
               for line in waiting), waiting


def test_on_the_cloud_the_note_names_the_admin_route(tmp_path: Path) -> None:
    _report, lines = _run(tmp_path, "cloud")
    assert any("POST /api/admin/recover/" in line for line in lines if " still " in line), lines
