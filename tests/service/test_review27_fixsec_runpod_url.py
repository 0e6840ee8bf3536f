"""RunPod's endpoint URL (it names the endpoint id) is in the operator's log line when RunPod cannot be reached,
never in what an API client is told: the create's 503 body and the failed job's `error` in GET /api/status
said "RunPod at https://.../v2/<endpoint id> is unreachable"."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import BUCKET, RUNPOD_KEY, Harness, LogCapture, make_config

from service.app import create_app
from service.httpx_transport import HttpxTransport
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sqlite_database import SqliteDatabase

ENDPOINT_ID = "epfixsec27secret"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable(db_path: Path, moto_endpoint: str, fake_runpod: Any, log_lines: LogCapture, s3: Any,
                _store_client: Any) -> Iterator[tuple[Harness, str]]:
    base = f"http://127.0.0.1:{_closed_port()}/v2/{ENDPOINT_ID}"
    config = make_config(runpod_endpoint_base=base, db_path=str(db_path), s3_endpoint_url=moto_endpoint)
    db = SqliteDatabase(db_path)
    transport = HttpxTransport()
    gateway = HttpRunPodGateway(transport, base, RUNPOD_KEY, timeout_s=5)
    app = create_app(config, db, S3ResultStore(_store_client, BUCKET), gateway, log_sink=log_lines.sink,
                     clock=lambda: 1_800_000_000.0)
    harness = Harness(app, db, s3, fake_runpod, [1_800_000_000.0])
    yield harness, base
    harness.run(transport.aclose())
    harness.loop.close()
    db.close()


def test_an_unreachable_runpod_is_told_to_clients_without_its_endpoint_url(unreachable, log_lines) -> None:
    svc, base = unreachable
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                             "inputs": {"prompt": "a lighthouse"}})
    assert status == 503, body
    told = json.dumps(body)
    assert "unreachable" in told and ENDPOINT_ID not in told and "127.0.0.1" not in told, told

    (job_id,) = [row["id"] for row in svc.run(svc.db.query("SELECT id FROM jobs"))]
    status, view, _ = svc.call("GET", f"/api/status/{job_id}")
    assert status == 200 and view["status"] == "failed", view
    assert "unreachable" in view["error"] and ENDPOINT_ID not in json.dumps(view), view

    (line,) = [json.loads(raw) for raw in log_lines if json.loads(raw)["event"] == "job.submit_failed"]
    assert base in line["error"]["message"], line  # the operator still learns where the service looked
