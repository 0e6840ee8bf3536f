"""The check that ends "A runaway client: stop the spend" (docs/RUNBOOK.md, step 3), as an operator runs it after the
drill: `goldgate cancel --all-queued --stack S --client NAME` answers `no job to cancel` and exit 0 once none of the
revoked client's jobs is queued, whatever the other clients still have queued, and so does a name no client ever
held (the name is not checked against the clients: a revoked one is none). For a runaway on the API token, the
preview without --client shows whether any of its jobs is queued: a `by client` line with or without `(API token)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from goldgate.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))  # the stack database the ops tests build
from ops_fixtures import build_stack_db, run_sql

STACK = "staging"


def _stack_with_queued(home: Path, queued_by: dict[str, str | None]) -> None:
    """A stack database whose only queued jobs are `queued_by` (job id -> the client that created it; None: the API
    token); every other job ended."""
    path = build_stack_db(home / "stacks" / STACK / "db.sqlite", 12, stack=STACK)
    run_sql(path, "UPDATE jobs SET status = 'completed'",
            *[f"UPDATE jobs SET status = 'queued', client = {'NULL' if c is None else repr(c)} WHERE id = '{job}'"
              for job, c in queued_by.items()])


def _cancel(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str]:
    code = main(["cancel", "--all-queued", "--stack", STACK, "--home", str(home), *args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("name", ["batch", "bacth"], ids=["the-revoked-client", "a-misspelt-name"])
def test_the_check_after_the_cancel_says_no_job_to_cancel_and_exits_0_while_another_clients_jobs_wait(
        tmp_path, capsys, name):
    _stack_with_queued(tmp_path, {"job-0000001": "web", "job-0000002": "web", "job-0000003": None})
    # the runaway's jobs, cancelled by step 2: ended, not queued
    run_sql(tmp_path / "stacks" / STACK / "db.sqlite", "UPDATE jobs SET status = 'cancelled', client = 'batch' "
            "WHERE id NOT IN ('job-0000001', 'job-0000002', 'job-0000003')")
    code, out = _cancel(capsys, tmp_path, "--client", name)
    assert code == 0, out
    said = f"{STACK}: no job to cancel (local: none queued, client {name})"
    if name == "batch":
        assert out.strip() == said
    else:  # no job ever named it: the name is likely misspelt, which the check says
        assert out.strip() == (f"{said}; and no job there, ended or not, was created by client {name}: check the "
                               "name against a request line's data.client")


def test_the_same_check_before_the_cancel_counts_the_runaways_queued_jobs_and_exits_2(tmp_path, capsys):
    _stack_with_queued(tmp_path, {"job-0000001": "web", "job-0000002": "batch", "job-0000003": "batch"})
    code, out = _cancel(capsys, tmp_path, "--client", "batch")
    assert code == 2, out
    assert "2 jobs to cancel (local: queued, client batch)" in out and "by client: batch 2" in out


def test_the_preview_shows_whether_any_api_token_job_is_queued_beside_the_clients(tmp_path, capsys):
    _stack_with_queued(tmp_path, {"job-0000001": "web", "job-0000002": None, "job-0000003": None})
    code, out = _cancel(capsys, tmp_path)
    assert code == 2 and "by client: " in out and "(API token) 2" in out and "web 1" in out, out

    other = tmp_path / "other"
    _stack_with_queued(other, {"job-0000001": "web"})
    code, out = _cancel(capsys, other)
    assert code == 2 and "by client: web 1" in out and "(API token)" not in out, out
