"""A cancel that only a recovery can settle tells a named client to ask the stack's operator, not to run `goldgate
recover` or POST /api/admin/recover (which answers a client 403 operator_only), nor to cancel in RunPod's console;
the API token's answer keeps the operator's steps."""

from __future__ import annotations

from types import SimpleNamespace

from service.cancel import _not_submitted

_JOB = {"id": "ab" * 16, "status": "queued", "run_timeout_ms": 1_000, "created_at_ms": 0}


def _app() -> SimpleNamespace:
    return SimpleNamespace(clock=lambda: 3_600.0, config=SimpleNamespace(runpod_timeout_s=1.0))


def test_a_job_runpod_never_took_tells_a_client_to_ask_the_operator() -> None:
    refused = _not_submitted(_app(), _JOB, operator=False)
    assert refused.status == 409 and refused.code == "not_submitted"
    assert refused.message.endswith("nothing changed; ask the stack's operator to recover the job, naming its job_id")
    assert "goldgate" not in refused.message and "console" not in refused.message


def test_the_operator_still_gets_the_steps() -> None:
    refused = _not_submitted(_app(), _JOB)
    assert "cancel its runpod_job_id in RunPod's console, then recover the job (goldgate recover --runpod-job-id)" \
        in refused.message
