"""Named clients split over two bindings under the real Pyodide, in the Worker's real upload: with CLIENT_TOKENS holding
one client's hash and CLIENT_TOKENS_2 another's (as a cloud stack of more clients than 5 KB holds declares them), a
request bearing the second client's token is served as that client, and CLIENT_TOKENS_3, unbound, is no refusal. The
token-rotation scenario of run_worker.mjs is reused as test_review34_clients_pyodide does."""

from __future__ import annotations

import hashlib
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
CLIENT = f"{NEW}-not-a-token"  # what run_worker.mjs sends as its "neither" token
DIGEST = hashlib.sha256(CLIENT.encode()).hexdigest()
OTHER = hashlib.sha256(b"another-client-token-0123456789abcdef").hexdigest()


@pytest.fixture(scope="module", params=sorted(RUNTIMES))
def phases(request: pytest.FixtureRequest, node: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
           ) -> dict[str, Any]:
    upload = tmp_path_factory.mktemp("pyodide-client-parts") / "upload.json"
    upload.write_text(json.dumps(upload_input(API_TOKEN=NEW, API_TOKEN_PREVIOUS=OLD,
                                              CLIENT_TOKENS=json.dumps({"batch": OTHER}),
                                              CLIENT_TOKENS_2=json.dumps({"web-frontend": DIGEST}))))
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), "--token-rotation", str(upload), request.param],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, f"run_worker.mjs --token-rotation failed:\n{_tail(done.stderr)}"
    summary = json.loads(done.stdout)
    for phase in summary["phases"].values():
        failed = {s["name"]: _tail(s["exception"]) for s in phase["steps"] if "exception" in s}
        assert not failed, f"Default.fetch raised into the runtime: {failed}"
    return summary["phases"]


def test_the_worker_under_pyodide_serves_a_client_of_the_second_binding_as_that_client(phases, log_lines):
    for phase in phases.values():
        check_log_lines(phase["printed"], extra_forbidden=(CLIENT, DIGEST, OTHER))
        log_lines.extend(phase["printed"])
        assert not [line for line in phase["printed"] if "service.client_tokens_refused" in line]
        served = {s["name"]: s for s in phase["steps"]}["neither"]
        assert served["status"] == 200, served["json"]
        lines = [json.loads(line) for line in served["printed"]]
        assert [(x.get("data") or {}).get("client") for x in lines] == ["web-frontend"]
