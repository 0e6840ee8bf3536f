"""Review 30 mutation audit (mut30): `http.check_content_encoding` takes a Content-Encoding that names no coding.
A proxy or client library that sends the header empty (`Content-Encoding:` with no value) or as a list with an empty
member (`identity, `; RFC 9110 5.6.1 lets a recipient ignore empty list elements) sends the JSON as it is: the
create is taken, not refused 415 with "send the JSON uncompressed", which its sender already did."""

from __future__ import annotations

import json

import pytest

CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


@pytest.mark.parametrize("coding", ["", " ", "identity, ", ", identity"])
def test_a_content_encoding_naming_no_coding_takes_the_plain_body(svc, coding):
    status, answer, _ = svc.call("POST", "/api/queue/create", raw=json.dumps(CREATE).encode(),
                                 headers={"content-encoding": coding})
    assert status == 202, answer
    assert svc.job(answer["job_id"])["status"] == "queued"
