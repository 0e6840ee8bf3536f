"""`goldgate recover` of a job RunPod still holds (IN_QUEUE/IN_PROGRESS) says no webhook was lost and where to look:
it printed `queued (duplicate)` alone, and an operator sent to recover by a golden run's note stopped there while
every worker failed at start."""

from __future__ import annotations

import pytest

from goldgate.cli import main
from goldgate.commands import local

JOB = "a" * 32


class _Api:
    """The recover route's answer for a job RunPod has not finished (service/recover.py: runpod_status set)."""

    def __init__(self, runpod_status: str, status: str) -> None:
        self.answer = {"job_id": JOB, "applied": False, "reason": "duplicate", "status": status,
                       "runpod_status": runpod_status}

    def call(self, method: str, path: str, **_: object) -> dict:
        if method == "POST" and path == f"/api/admin/recover/{JOB}":
            return self.answer
        return {"status": self.answer["status"], "error": None}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("runpod_status, status", [("IN_QUEUE", "queued"), ("IN_PROGRESS", "in_progress")])
def test_a_job_runpod_still_holds_is_said_to_be_unfinished_not_lost(monkeypatch, capsys, tmp_path, runpod_status,
                                                                   status):
    monkeypatch.setattr(local, "ApiClient", lambda _platform, _stack: _Api(runpod_status, status))
    assert main(["recover", JOB, "--stack", "staging", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{JOB}: {status} (duplicate)")
    assert f"RunPod still has it {runpod_status}: no webhook was lost" in out
    assert "goldgate status staging" in out


def test_a_settled_job_says_nothing_of_runpod(monkeypatch, capsys, tmp_path):
    api = _Api("COMPLETED", "completed")
    api.answer.update(applied=True, reason="applied")
    monkeypatch.setattr(local, "ApiClient", lambda _platform, _stack: api)
    assert main(["recover", JOB, "--stack", "staging", "--home", str(tmp_path)]) == 0
    assert "RunPod still has it" not in capsys.readouterr().out
