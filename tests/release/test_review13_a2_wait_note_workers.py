"""A golden case whose job stays queued names the likelier cause first: no worker takes it (each exits at start,
preflight_failed), which `goldgate status <stack>` shows. Before, the note offered only the recovery of a lost webhook,
which finds nothing lost for a job RunPod still holds."""

from __future__ import annotations

from pathlib import Path

from test_review12_golden_wait_notes import _run


def test_the_wait_note_points_at_the_stacks_workers_before_the_webhook_recovery(tmp_path: Path) -> None:
    report, lines = _run(tmp_path, "local")
    job_id = report["cases"][0]["job_id"]
    waiting = [line for line in lines if f"job {job_id} still " in line]
    assert waiting, lines
    assert waiting[0].endswith("; if no worker takes it, see `goldgate status staging` (worker exits); if its "
                               f"webhook was lost: goldgate recover {job_id} --stack staging"), waiting


def test_on_the_cloud_it_points_at_the_endpoints_workers(tmp_path: Path) -> None:
    _report, lines = _run(tmp_path, "cloud")
    waiting = [line for line in lines if " still " in line and "(limit " in line]   # the notes, not the FAIL lines
    assert waiting and all("if no worker takes it, see staging's RunPod endpoint" in line for line in waiting), lines
