"""What the gate reads besides the report, when it is not what goldgate writes: STAGING's metrics answer (the
service's `GET /api/metrics`, or whatever answers at that URL), and a ledger
whose deploy entry has a time without a zone. Each is one error line, or read as no time, never a traceback."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from release_support import StandInApi, standin_api
from serving import serving
from test_error_rate import SINCE, metrics_db
from test_gate_and_lock import Stacks, failed

from goldgate.errors import GoldgateError
from goldgate.release.error_rate import from_api, from_sqlite
from goldgate.release.gate import ErrorRate
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64


class Metrics(BaseHTTPRequestHandler):
    body: ClassVar[bytes] = b""

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def _answering(body: bytes) -> type[Metrics]:
    return type("Answer", (Metrics,), {"body": body})


def test_a_metrics_answer_with_an_infinite_count_is_one_error(tmp_path: Path) -> None:
    # JSON's 1e400 reads as infinity: `int(inf)` raised OverflowError, which no handler caught (a traceback
    # from `goldgate promote`).
    with (serving(_answering(b'{"overall": {"count": 1e400, "errors": 0}}')) as url,
          pytest.raises(GoldgateError, match=r"/api/metrics answered without `overall.count` and `errors`")):
        from_api(url, "token", SINCE)


def test_a_metrics_answer_far_longer_than_any_report_is_not_read_whole(tmp_path: Path) -> None:
    # Before: the whole body was read into memory, however long (a proxy's answer, a body without end).
    padded = b" " * (8 * 1024 * 1024) + b'{"overall": {"count": 3, "errors": 0}}'
    with (serving(_answering(padded)) as url,
          pytest.raises(GoldgateError, match=r"/api/metrics answered 200 with more than 4194304 bytes")):
        from_api(url, "token", SINCE)
    with serving(_answering(b'{"overall": {"count": 3, "errors": 1}}')) as url:
        assert (from_api(url, "token", SINCE).jobs, from_api(url, "token", SINCE).failed) == (3, 1)


def test_a_metrics_answer_trickled_a_byte_at_a_time_ends_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx's timeout bounds each read only: an answer trickled a byte at a time held `promote`, and the release
    # lock with it, for as long as the peer liked.
    from serving import Trickle

    from goldgate.release import error_rate

    monkeypatch.setattr(error_rate, "_ANSWER_DEADLINE_S", 0.5)
    server = Trickle(b'{"overall": {"count": 3, "errors": 1}}' + b" " * 400)
    try:
        with pytest.raises(GoldgateError, match=r"/api/metrics did not answer in full within 0.5 s"):
            from_api(server.url, "token", SINCE)
    finally:
        server.close()
    assert not server.finished


class MetricsFromSqlite(Stacks):
    """A deployer whose STAGING error rate is read from a real job_metrics table, as the local target's is."""

    def __init__(self, api_url: str, pins: dict[str, str], db: Path) -> None:
        super().__init__(api_url, pins)
        self.db = db

    def error_rate(self, stack: str, since: datetime) -> ErrorRate:
        return from_sqlite(self.db, stack, since)


def test_a_deploy_entry_whose_time_has_no_zone_does_not_stop_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    # The error-rate window starts at STAGING's deploy of the image, read from the ledger. A time without a zone
    # (a ledger line written by hand, chain recomputed) compared with the metrics' UTC times: TypeError.
    home = tmp_path / "home"
    now = datetime.now(UTC)
    db = metrics_db(tmp_path, [("j1", "staging", "completed", now.isoformat())])
    body = {"seq": 1, "ts": now.replace(tzinfo=None).isoformat(), "kind": "deploy", "stack": "staging",
            "before": None, "after": A, "image": A, "trigger": "user:t", "prev": "0" * 64}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    home.mkdir()
    (home / "ledger.jsonl").write_text(json.dumps({**body, "hash": digest}) + "\n")
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        stacks = MetricsFromSqlite(api.url, {"staging": A}, db)
        run = run_golden(stacks, "staging", ledger, paths=paths, poll_s=0.01)
        decision = check_gate(stacks, ledger, run.path)[0]
    assert failed(decision) == [] and decision.passed
