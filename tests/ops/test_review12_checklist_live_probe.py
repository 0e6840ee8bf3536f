"""The idempotency line's live probe sends a duplicate and an older state (IN_PROGRESS after COMPLETED): the
service must ignore both, answering 200 `applied: false, reason: out_of_order` to the late one."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest
from ops_fixtures import build_stack_db
from serving import serving

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.ops.checklist_facts import live_probe

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

TOKEN, SECRET = "probe-api-token-0123456789", "probe-webhook-secret-0123456789"


def _service(late_answer: dict) -> type[BaseHTTPRequestHandler]:
    """A stand-in API on loopback: a duplicate COMPLETED is `no_change`; the late IN_PROGRESS gets `late_answer`;
    the status and the result answer as the job's row says. It writes nothing, so the row stays as it was."""

    class Service(BaseHTTPRequestHandler):
        received: ClassVar[list[str]] = []

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
            Service.received.append(payload["status"])
            answer = ({"applied": False, "reason": "no_change", "status": "completed"}
                      if payload["status"] == "COMPLETED" else late_answer)
            self._send(200, json.dumps(answer).encode())

        def do_GET(self) -> None:
            if self.path.startswith("/api/status/"):
                self._send(200, b'{"status": "completed"}')
            else:
                self._send(200, b"x" * 1234, "image/png")

        def log_message(self, *_: object) -> None:
            pass

    return Service


def test_a_service_that_applies_an_older_state_after_the_terminal_one_fails_the_probe(tmp_path):
    # Before: only the duplicate was sent, so this service passed ("nothing changed").
    db = build_stack_db(tmp_path / "db.sqlite", jobs=3, fail_every=1000)
    handler = _service({"applied": True, "reason": "applied", "status": "in_progress"})
    with serving(handler) as url:
        live = live_probe(url, TOKEN, SECRET, db)
    assert handler.received == ["COMPLETED", "IN_PROGRESS"]
    assert live.replay_ok is False
    assert 'then an IN_PROGRESS after it: HTTP 200 applied=true reason="applied"' in live.replay_detail
    assert '(expected applied=false, reason="out_of_order")' in live.replay_detail


def test_a_service_that_ignores_both_passes_and_the_evidence_names_both(tmp_path):
    db = build_stack_db(tmp_path / "db.sqlite", jobs=3, fail_every=1000)
    with serving(_service({"applied": False, "reason": "out_of_order", "status": "completed"})) as url:
        live = live_probe(url, TOKEN, SECRET, db)
    assert live.replay_ok is True, live.replay_detail
    assert "replayed the COMPLETED webhook of job job-0000003: HTTP 200" in live.replay_detail
    assert 'IN_PROGRESS after it: HTTP 200 applied=false reason="out_of_order"' in live.replay_detail
    assert "nothing changed" in live.replay_detail
    assert SECRET not in live.replay_detail and TOKEN not in live.replay_detail


def test_the_real_local_service_ignores_both_and_the_line_says_so(tmp_path, capsys):
    home, reports = tmp_path / "home", tmp_path / "reports"
    platform = LocalPlatform(home)
    try:
        assert main(["release", "--home", str(home), "--reports-dir", str(reports)]) == 0
        capsys.readouterr()
        lines = []
        for _ in range(2):  # a daily checklist: the second run's late delivery is no duplicate of the first's
            main(["checklist", "staging", "--home", str(home), "--reports-dir", str(reports), "--json"])
            lines.append(next(c for c in json.loads(capsys.readouterr().out)["checks"]
                              if c["id"] == "webhook_idempotent"))
        line = lines[-1]
    finally:
        for stack in ("staging", "prod"):
            platform.down(stack)
    assert [x["status"] for x in lines] == ["pass", "pass"], lines
    assert 'then an IN_PROGRESS after it: HTTP 200 applied=false reason="out_of_order"' in line["evidence"]
    assert "nothing changed (job row, metrics, applied deliveries)" in line["evidence"]
