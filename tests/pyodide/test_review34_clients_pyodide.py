"""A named client's token under the real Pyodide, in the Worker's real upload: with a CLIENT_TOKENS binding holding
the sha256 of a client's token, a request bearing that token is served as the client (its line says `data.client`),
and neither the token nor its hash is printed. The token-rotation scenario of run_worker.mjs is reused: its "neither"
request (a token that is no API token) carries the client's token here."""

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


@pytest.fixture(scope="module", params=sorted(RUNTIMES))
def phases(request: pytest.FixtureRequest, node: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
           ) -> dict[str, Any]:
    upload = tmp_path_factory.mktemp("pyodide-clients") / "upload.json"
    upload.write_text(json.dumps(upload_input(API_TOKEN=NEW, API_TOKEN_PREVIOUS=OLD,
                                              CLIENT_TOKENS=json.dumps({"web-frontend": DIGEST}))))
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), "--token-rotation", str(upload), request.param],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, f"run_worker.mjs --token-rotation failed:\n{_tail(done.stderr)}"
    summary = json.loads(done.stdout)
    for phase in summary["phases"].values():
        failed = {s["name"]: _tail(s["exception"]) for s in phase["steps"] if "exception" in s}
        assert not failed, f"Default.fetch raised into the runtime: {failed}"
    return summary["phases"]


def test_the_worker_under_pyodide_serves_a_clients_token_as_that_client(phases, log_lines):
    for phase in phases.values():
        check_log_lines(phase["printed"], extra_forbidden=(CLIENT, DIGEST))
        log_lines.extend(phase["printed"])
        steps = {s["name"]: s for s in phase["steps"]}
        served = steps["neither"]
        assert served["status"] == 200, served["json"]
        lines = [json.loads(line) for line in served["printed"]]
        assert [(x.get("data") or {}).get("client") for x in lines] == ["web-frontend"]
        current = [json.loads(line) for line in steps["current"]["printed"]]
        assert [(x.get("data") or {}).get("client") for x in current] == [None]
        assert steps["no_header"]["status"] == 401
