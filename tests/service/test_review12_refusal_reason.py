"""A refused request's log line says why, with the error code the client got: an operator who sees many 400s on
create or many 401s can tell a client's bad input from a wrong token without the client's help."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(("body", "token", "status", "reason"), [
    ({"workflow_id": "sdxl-txt2img", "inputs": {}}, "default", 400, "missing_input"),
    ({"workflow_id": "nope", "inputs": {"prompt": "x"}}, "default", 400, "unknown_workflow"),
    ({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}}, "wrong-token-0123456789", 401, "unauthorized"),
])
def test_a_refused_create_names_its_reason_on_its_line(svc, log_lines, body, token, status, reason):
    kwargs = {} if token == "default" else {"token": token}
    answer, payload, _ = svc.call("POST", "/api/queue/create", body, **kwargs)
    assert answer == status and payload["error"]["code"] == reason
    [line] = [json.loads(x) for x in log_lines]
    assert line["event"] == "http.request" and line["http"]["status"] == status
    assert line["reason"] == reason


def test_a_handlers_own_reason_is_kept(svc, log_lines):
    job = svc.create()
    log_lines.clear()
    status, _, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}", {"runpod_job_id": "someone-else"})
    assert status == 409
    [line] = [json.loads(x) for x in log_lines]
    assert line["event"] == "job.recover_failed" and line["reason"] == "runpod_id_recorded"
