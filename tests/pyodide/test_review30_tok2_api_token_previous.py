"""The API token's rotation (docs/RUNBOOK.md) under the real Pyodide, in the Worker's real upload: while the
API_TOKEN_PREVIOUS binding holds the old token, a client still sending it is served and its request's line says
`data.token: "previous"` (what the operator watches to see the old token drain); the current token is served with no
token field; anything else is a 401. A binding left empty (the secret's value cleared, not removed) counts as unset:
the Worker serves, and opens to no empty token. Before, only the CPython stand-in of the Worker covered this path
(tests/service/test_review30_tok_api_token_rotation.py); run_worker.mjs had no scenario binding API_TOKEN_PREVIOUS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from service_testkit import check_log_lines
from test_worker_in_pyodide import RUNTIMES, _tail, node  # noqa: F401 - node: the fixture (the pinned Pyodide)
from worker_upload import upload_input

HERE = Path(__file__).resolve().parent
OLD = "tok-OldApiToken-1a3c5e7b9d2f"
NEW = "tok-NewApiToken-8e6c4a2f0b1d"


@pytest.fixture(scope="module", params=sorted(RUNTIMES))
def rotation(request: pytest.FixtureRequest, node: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
             ) -> dict[str, Any]:
    upload = tmp_path_factory.mktemp("pyodide-token") / "upload.json"
    upload.write_text(json.dumps(upload_input(API_TOKEN=NEW, API_TOKEN_PREVIOUS=OLD)))
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), "--token-rotation", str(upload), request.param],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, f"run_worker.mjs --token-rotation failed:\n{_tail(done.stderr)}"
    summary = json.loads(done.stdout)
    assert summary["pyodide"] == RUNTIMES[request.param][0], summary["pyodide"]
    for phase in summary["phases"].values():
        failed = {s["name"]: _tail(s["exception"]) for s in phase["steps"] if "exception" in s}
        assert not failed, f"Default.fetch raised into the runtime: {failed}"
        assert phase["stderr"] == []
    return summary["phases"]


def _answers(phase: dict[str, Any], log_lines: list[str]) -> dict[str, tuple[int, Any, list[dict]]]:
    """Each request's status, error code (None on success) and the log lines it printed, by step name."""
    check_log_lines(phase["printed"], extra_forbidden=(OLD, NEW))  # neither token on any line
    log_lines.extend(phase["printed"])  # and each line on the schema (the kit checks them at the end)
    return {s["name"]: (s["status"], ((s["json"] or {}).get("error") or {}).get("code"),
                        [json.loads(line) for line in s["printed"]]) for s in phase["steps"]}


def _token(lines: list[dict]) -> list[Any]:
    """data.token of each line that answered the request (absent: None)."""
    return [(line.get("data") or {}).get("token", None) for line in lines
            if line["event"] in ("http.request", "job.submitted")]


def test_during_a_rotation_the_worker_serves_either_token_and_marks_the_previous_ones(rotation, log_lines):
    answers = _answers(rotation["rotating"], log_lines)
    assert answers["previous"][:2] == (200, None) and _token(answers["previous"][2]) == ["previous"]
    assert answers["previous_create"][:2] == (202, None) and _token(answers["previous_create"][2]) == ["previous"]
    assert answers["current"][:2] == (200, None) and _token(answers["current"][2]) == [None]
    assert answers["current_create"][:2] == (202, None) and _token(answers["current_create"][2]) == [None]
    for refused in ("neither", "no_header", "empty_bearer"):
        assert answers[refused][:2] == (401, "unauthorized"), refused
        assert _token(answers[refused][2]) == [None], refused
    assert rotation["rotating"]["runpod_calls"] == 2  # both creates reached RunPod, nothing else did


def test_an_empty_previous_token_binding_counts_as_unset(rotation, log_lines):
    answers = _answers(rotation["previous_empty"], log_lines)
    assert not [line for lines in answers.values() for line in lines[2] if line["event"] == "service.misconfigured"]
    assert answers["current"][:2] == (200, None) and _token(answers["current"][2]) == [None]
    assert answers["current_create"][:2] == (202, None)
    for refused in ("old_previous", "neither", "no_header", "empty_bearer"):  # the old token is over, and no empty one
        assert answers[refused][:2] == (401, "unauthorized"), refused
