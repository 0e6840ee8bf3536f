"""A string input holding a NUL character is refused by the API's create with a 400 naming the input, as the
worker refuses it (images/worker/workflows.py): accepted, the job would be sent to RunPod, start a worker (billed)
and only then fail with "input 'prompt' contains a NUL character"."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("text", ["\x00", "a lighthouse\x00 at dusk"])
def test_a_nul_in_a_string_input_is_refused_at_create_and_nothing_is_sent(svc, text: str) -> None:
    inputs = {"prompt": text}
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": inputs})
    assert status == 400, body
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_input", "inputs.prompt")
    assert "NUL" in body["error"]["message"]
    assert svc.fake.runs == []
    assert svc.run(svc.db.query("SELECT COUNT(*) AS n FROM jobs"))[0]["n"] == 0
