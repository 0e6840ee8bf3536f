"""GET /healthz while the database refuses writes. Before, it answered 200 `ok` on a full database: its check is
a read, and reads go on, so a monitor on it saw a healthy service while every create and webhook was refused.
Now it reports what the service already knows, without a probe of its own (D1 has no cheap "is it full"): the
last write it was given was refused, with the code and the time, until a write succeeds again. Locally over
SQLite, and on the Worker path over D1 (per isolate)."""

from __future__ import annotations

import pytest
from service_testkit import API_TOKEN
from test_review18_full_d1 import CREATE as D1_CREATE
from test_review18_full_d1 import Worker, _fill, _lines
from test_review18_full_database import CREATE, fill, make_room
from test_service_cloudflare_entry import _entry, make_env

AUTH = {"authorization": f"Bearer {API_TOKEN}"}


def _unhealthy(status: int, body: dict, code: str) -> None:
    assert status == 503, (status, body)
    assert body["error"]["code"] == "database_unavailable", body
    message = body["error"]["message"]
    assert f"({code})" in message and "refused the last write" in message, message


def test_healthz_says_the_database_refuses_writes_while_it_is_full(svc):
    assert svc.call("GET", "/healthz", token=None)[0] == 200
    fill(svc)
    assert svc.call("GET", "/healthz", token=None)[0] == 200, "no write was refused yet: nothing is known"
    assert svc.call("POST", "/api/queue/create", CREATE)[0] == 503
    status, body, headers = svc.call("GET", "/healthz", token=None)
    _unhealthy(status, body, "storage_full")
    assert headers["retry-after"] and headers["cache-control"] == "no-store"
    assert svc.call("GET", "/api/status/" + "0" * 32)[0] == 404, "reads go on"

    make_room(svc)
    assert svc.call("POST", "/api/queue/create", CREATE)[0] == 202
    status, body, _ = svc.call("GET", "/healthz", token=None)
    assert (status, body) == (200, {"status": "ok", "stack": "test"})


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch):
    yield from _entry(monkeypatch, with_jsnull=True)


def test_the_workers_healthz_says_d1_refuses_writes_while_it_is_full(entry, tmp_path, fake_runpod, capsys,
                                                                    log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    worker = Worker(entry, env)
    _fill(env.DB)
    assert worker.call("GET", "/healthz")[0] == 200
    assert worker.call("POST", "/api/queue/create", D1_CREATE, AUTH)[0] == 503
    status, body, _ = worker.call("GET", "/healthz")
    _unhealthy(status, body, "storage_full")

    env.DB.conn.execute("PRAGMA max_page_count = 1073741823")
    assert worker.call("POST", "/api/queue/create", D1_CREATE, AUTH)[0] == 202
    assert worker.call("GET", "/healthz")[0] == 200
    _lines(capsys, log_lines)  # schema-checked and scanned for secrets at teardown


def test_a_busy_refusal_minutes_old_no_longer_fails_healthz_and_a_gone_file_says_it_needs_a_restart(svc):
    """A lock (or a D1 restart) passes in seconds; on an idle stack no write comes to clear its refusal, and a
    monitor paged "database unavailable" long after. A replaced file, though, is mended only by a restart."""
    import time

    from service.ports import WriteRefusal
    from service.routes import BUSY_REPORTED_S

    svc.db.last_write_refusal = WriteRefusal("database_busy", "locked", time.time() - BUSY_REPORTED_S - 5)
    assert svc.call("GET", "/healthz", token=None)[0] == 200
    svc.db.last_write_refusal = WriteRefusal("database_busy", "locked", time.time() - 1)
    _unhealthy(*svc.call("GET", "/healthz", token=None)[:2], "database_busy")
    svc.db.last_write_refusal = WriteRefusal("database_unavailable", "gone", time.time() - BUSY_REPORTED_S - 5)
    status, body, _ = svc.call("GET", "/healthz", token=None)
    _unhealthy(status, body, "database_unavailable")
    assert body["error"]["message"].endswith("until the service is restarted on its own database"), body
