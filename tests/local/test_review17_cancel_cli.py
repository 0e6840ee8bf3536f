"""`goldgate cancel <job_id> --stack <stack>`: what the operator reads, and what it refuses before any
request. The route's answers are stood in for here (service/cancel.py's shapes);
tests/local/test_review17_cancel_local_stack.py runs it against a real stack."""

from __future__ import annotations

import json

import pytest

from goldgate.cli import main
from goldgate.commands import local
from goldgate.errors import GoldgateError

JOB = "ab" * 16


class _Api:
    def __init__(self, answer: dict | None = None, error: str | None = None) -> None:
        self.answer, self.error, self.calls, self.closed = answer, error, [], False

    def call(self, method: str, path: str, **_: object) -> dict:
        self.calls.append((method, path))
        if self.error:
            raise GoldgateError(self.error)
        return self.answer or {}

    def close(self) -> None:
        self.closed = True


def _use(monkeypatch, api: _Api) -> list[str]:
    stacks: list[str] = []

    def client(_platform, stack):
        stacks.append(stack)
        return api

    monkeypatch.setattr(local, "ApiClient", client)
    return stacks


def test_a_cancel_prints_the_job_and_what_became_of_it(monkeypatch, capsys, tmp_path):
    api = _Api(
        {
            "job_id": JOB,
            "cancelled": True,
            "applied": True,
            "reason": "applied",
            "status": "cancelled",
            "runpod_status": "CANCELLED",
            "message": f"job {JOB} is cancelled: RunPod stopped it",
        }
    )
    stacks = _use(monkeypatch, api)
    assert main(["cancel", JOB.upper(), "--stack", "staging", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out == f"{JOB}: cancelled (applied)\n  job {JOB} is cancelled: RunPod stopped it\n"
    assert stacks == ["staging"] and api.calls == [("POST", f"/api/cancel/{JOB}")] and api.closed


def test_a_cancel_that_changed_nothing_says_so_and_exits_0(monkeypatch, capsys, tmp_path):
    answer = {
        "job_id": JOB,
        "cancelled": False,
        "applied": False,
        "reason": "already_ended",
        "status": "completed",
        "runpod_status": None,
        "message": f"job {JOB} had already ended (completed): nothing was cancelled",
    }
    _use(monkeypatch, _Api(answer))
    assert main(["cancel", JOB, "--stack", "prod", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{JOB}: completed (already_ended), not cancelled by this request\n")
    assert main(["cancel", JOB, "--stack", "prod", "--home", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == answer


def test_a_refused_cancel_is_one_error_line_and_exit_1(monkeypatch, capsys, tmp_path):
    api = _Api(
        error=f"POST /api/cancel/{JOB} answered 409: job {JOB} is being submitted to RunPod and has no "
        "RunPod id yet: nothing changed; cancel it again in a few seconds"
    )
    _use(monkeypatch, api)
    assert main(["cancel", JOB, "--stack", "staging", "--home", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "answered 409" in captured.err and "cancel it again in a few seconds" in captured.err
    assert api.closed


@pytest.mark.parametrize("job_id", ["../admin/recover/" + JOB, JOB + "?x=1", "a" * 31, JOB + "#", "%61" * 32])
def test_what_is_not_a_job_id_is_refused_before_any_request(monkeypatch, capsys, tmp_path, job_id):
    api = _Api({})
    _use(monkeypatch, api)
    assert main(["cancel", job_id, "--stack", "staging", "--home", str(tmp_path)]) == 1
    assert "is not a job id" in capsys.readouterr().err
    assert api.calls == []


def test_the_stack_given_where_the_job_id_goes_is_refused_before_any_request(monkeypatch, capsys, tmp_path):
    api = _Api({})
    _use(monkeypatch, api)
    with pytest.raises(SystemExit) as usage:  # recover's order: the job, then --stack
        main(["cancel", "staging", JOB, "--home", str(tmp_path)])
    assert usage.value.code == 2 and "--stack" in capsys.readouterr().err
    assert main(["cancel", "staging", "--stack", "staging", "--home", str(tmp_path)]) == 1
    assert "'staging' is not a job id" in capsys.readouterr().err
    assert api.calls == []


def test_a_stack_that_is_not_up_is_named(capsys, tmp_path):
    assert main(["cancel", JOB, "--stack", "staging", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "staging" in err and err.count("\n") == 1
