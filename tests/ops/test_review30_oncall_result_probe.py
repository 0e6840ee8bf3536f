"""The checklist's `result_via_api` line downloads one result: an image damaged in the store at its recorded size
(other bytes) must fail the line, and a refused download must say why and where the runbook takes it up, not only
"-> 409, application/json, 283 bytes"."""

from __future__ import annotations

import hashlib
import json
from http.server import BaseHTTPRequestHandler

import pytest
from ops_fixtures import build_stack_db, run_sql
from serving import serving

from goldgate.ops.checklist_facts import live_probe

TOKEN = "probe-api-token-0123456789"
IMAGE = b"\x89PNG" + b"x" * 1230  # 1234 bytes, the fixture's recorded size


def _service(status: int, body: bytes, ctype: str) -> type[BaseHTTPRequestHandler]:
    class Service(BaseHTTPRequestHandler):
        def _send(self, code: int, payload: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            if self.path.startswith("/api/status/"):
                self._send(200, b'{"status": "completed"}', "application/json")
            else:
                self._send(status, body, ctype)

        def log_message(self, *_: object) -> None:
            pass

    return Service


@pytest.fixture
def db(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=3, fail_every=1000)
    recorded = json.dumps([{"key": "results/x/0.png", "content_type": "image/png", "bytes": len(IMAGE),
                            "sha256": hashlib.sha256(IMAGE).hexdigest()}])
    run_sql(db, f"UPDATE jobs SET results_json = '{recorded}'")
    return db


def test_an_image_damaged_at_its_recorded_size_fails_the_line(db):
    with serving(_service(200, IMAGE, "image/png")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is True and "sha256 as recorded" in live.result_detail, live.result_detail
    damaged = IMAGE[:-1] + b"y"
    with serving(_service(200, damaged, "image/png")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is False
    assert hashlib.sha256(damaged).hexdigest()[:12] in live.result_detail
    assert "A result the store no longer holds" in live.result_detail


def test_a_refused_download_quotes_the_service_and_names_the_runbook(db):
    error = {"error": {"code": "result_changed", "message": "result results/x/0.png of job job-0000003 has changed "
                                                            "in the result store"}}
    with serving(_service(409, json.dumps(error).encode(), "application/json")) as url:
        live = live_probe(url, TOKEN, None, db, no_replay="not asked")
    assert live.result_ok is False
    assert "result_changed" in live.result_detail and "has changed in the result store" in live.result_detail
    assert "docs/RUNBOOK.md" in live.result_detail
