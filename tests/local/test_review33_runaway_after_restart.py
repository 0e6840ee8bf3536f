"""The runbook's other way to stop a runaway's creates on a local stack, a lower api.max_jobs_in_flight applied with
`goldgate down` and `up`, ends the local RunPod's queue: the jobs the runaway queued stay `queued` in the database, and
RunPod has no record of them. `goldgate cancel --all-queued --yes` then cannot cancel one (409 unknown_runpod_job):
it says so once, and gives each job the line that settles it, `goldgate recover`, not the same cancel again."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ci_policy import needs
from processes import kill_everything_naming
from test_review33_bulkcancel_local_stack import up_held_staging

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"


@pytest.fixture
def restarted(tmp_path: Path) -> Iterator[tuple[LocalPlatform, list[str]]]:
    """STAGING whose one worker is held on its first job, 5 jobs created, then `down` and `up`: (platform, jobs)."""
    platform = up_held_staging(tmp_path)
    try:
        with httpx.Client(base_url=platform.status(STACK).api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token(STACK)}"}) as api:
            jobs = []
            for n in range(5):
                created = api.post("/api/queue/create",
                                   json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": f"runaway {n}"}})
                assert created.status_code == 202, created.text
                jobs.append(created.json()["job_id"])
        platform.down(STACK)
        platform.up(STACK, timeout_s=90)
        yield platform, jobs
    finally:
        platform.down(STACK)
        kill_everything_naming(str(platform.home))


def _statuses(platform: LocalPlatform, ids: list[str]) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(StackDir(platform.home, STACK).db_path)) as db:
        return dict(db.execute(f"SELECT id, status FROM jobs WHERE id IN ({', '.join('?' * len(ids))})", ids))


def test_jobs_a_restart_took_from_runpod_are_told_once_each_with_the_recover_line_that_settles_it(restarted, capsys):
    platform, jobs = restarted
    home = str(platform.home)
    capsys.readouterr()
    assert main(["cancel", "--all-queued", "--stack", STACK, "--home", home, "--yes"]) == 1
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == f"{STACK}: 0 cancelled, 0 had already ended, 5 failed, of 5 jobs selected (local: queued)"
    assert lines[2].startswith(f"  FAILED 5 jobs (unknown_runpod_job), e.g. {jobs[0]}: 409 unknown_runpod_job: "
                               "RunPod has no job "), text
    assert lines[3:8] == [f"      goldgate recover {j} --stack {STACK}" for j in jobs], text
    assert lines[8].startswith("  no cancel can settle these"), text
    assert text.count("RunPod has no job") == 2, text  # the example and the explanation, not once a job
    assert set(_statuses(platform, jobs).values()) == {"queued"}

    # each line, run as printed, settles its job: none is left in flight for `goldgate stuck` to list
    for line in lines[3:8]:
        assert main([*shlex.split(line)[1:], "--home", home]) == 0, line
    assert set(_statuses(platform, jobs).values()) == {"failed"}
    capsys.readouterr()
    assert main(["stuck", STACK, "--older-than", "0", "--home", home]) == 0
    assert "in flight: 0 of at most" in capsys.readouterr().out
