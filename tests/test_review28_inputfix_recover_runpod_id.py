"""`goldgate recover JOB --runpod-job-id <id>` checks the id by the service's own rule before it reaches a stack.
Before, a 100,000-character id was sent, and the answer was the service's `413: request body is over the
65536-byte limit`: true, but it never said what a RunPod id may be; an id the service refuses for its characters
came back as the service's 400. Now the command refuses it in one line that states the rule (1 to 128 letters,
digits, '.', '_' or '-', the first a letter or digit: service/recover.py's pattern), and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

from goldgate.cli import main
from goldgate.commands import local
from service.recover import RUNPOD_JOB_ID

JOB = "0123456789abcdef0123456789abcdef"


class RecordingApi:
    """The stack's API as `goldgate recover` reaches it: every call kept, each answered as a recovery that applied."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.calls.append((method, path, kw))
        return {"applied": True, "reason": "applied", "status": "completed", "runpod_status": "COMPLETED"}

    def close(self) -> None:
        pass


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> RecordingApi:
    fake = RecordingApi()
    monkeypatch.setattr(local, "stack_api", lambda args, stack: fake)
    return fake


def recover(tmp_path, capsys, runpod_job_id: str) -> tuple[int, str, str]:
    try:
        code = main(["recover", JOB, "--stack", "staging", "--home", str(tmp_path / "home"),
                     f"--runpod-job-id={runpod_job_id}"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("rid", ["a" * 100_000, "a" * 129, "../status/x", "-u1", "abc u1", "ab\x1b[2Jc",
                                 "id?x=1", "é-u1"],
                         ids=["100000-chars", "129-chars", "a-path", "dash-first", "a-space", "an-escape",
                              "a-query", "not-ascii"])
def test_an_id_the_service_would_refuse_is_refused_with_its_rule_and_nothing_is_sent(tmp_path, capsys, api, rid):
    assert not RUNPOD_JOB_ID.fullmatch(rid)  # the service refuses it too
    code, out, err = recover(tmp_path, capsys, rid)
    assert code == 1 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "is not a RunPod job id: 1 to 128 letters, digits, '.', '_' or '-', the first a letter or digit" in err
    assert f"the service's rule, {RUNPOD_JOB_ID.pattern}" in err
    assert f"({len(rid)} characters)" in err
    assert len(err) < 600 and "\x1b" not in err
    assert api.calls == []


@pytest.mark.parametrize("rid", ["9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f-u1", "sync-9f1c2d3e-4b5a-6c7d-8e9f-0a1b2c3d4e5f-e1",
                                 "a" * 128, "A.b_c-1"])
def test_an_id_the_service_takes_is_sent_in_the_body(tmp_path, capsys, api, rid):
    assert RUNPOD_JOB_ID.fullmatch(rid)
    code, _, err = recover(tmp_path, capsys, rid)
    assert code == 0, err
    assert api.calls[0] == ("POST", f"/api/admin/recover/{JOB}", {"json": {"runpod_job_id": rid}})


def test_the_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["recover", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "1 to 128 letters, digits, '.', '_' or '-', the first a letter or digit" in help_text, help_text
