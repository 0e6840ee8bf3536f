"""Review 29 (lead, from the mutation audit): a create answered in full, then a second create pipelined behind it
whose body a half-close cuts short. The server closed the connection at the client's FIN while the first answer was
still owed: the client got no byte, not the first create's 202 (its job made and sent to RunPod all the same) nor
the second's 400. Now the first is answered, then the second's 400 `body_unreadable`, in request order."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from raw_http import exchange
from service_testkit import count_jobs, create_head, edge_in_thread

from service.local_server import RunningServer

CREATE_BODY = b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}'


@pytest.fixture
def edge(tmp_path, moto_endpoint, fake_runpod, log_lines) -> Iterator[RunningServer]:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines) as server:
        yield server


def test_a_cut_body_behind_a_whole_create_is_answered_after_the_creates_202(edge, fake_runpod, log_lines):
    whole = create_head(len(CREATE_BODY)) + CREATE_BODY
    cut = create_head(len(CREATE_BODY)) + CREATE_BODY[:20]
    answers = exchange(edge.port, whole + cut, half_close=True)
    assert [status for status, _, _ in answers] == [202, 400], answers
    job_id = json.loads(answers[0][2])["job_id"]
    assert json.loads(answers[1][2])["error"]["code"] == "body_unreadable"
    assert count_jobs(edge) == 1 and [run["input"]["job_id"] for run in fake_runpod.runs] == [job_id]
    assert [line for line in map(json.loads, log_lines) if line["level"] == "error"] == []  # no crash in between
