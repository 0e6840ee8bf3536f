"""Review 11 of the Cloudflare clients: every call has an overall deadline (a peer trickling its answer a byte
at a time is let go, with one error naming the call), D1 /query params go as the strings the API documents
while keeping the SQLite types a caller bound, and an API token read with its line break works while one no
header can carry is refused without being shown."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import Trickle

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError, D1OperationFailed, R2Error
from goldgate.cloudflare.r2 import R2Admin

TOKEN = "cf-review11-token-0123456789"


def test_a_query_answer_trickled_a_byte_at_a_time_ends_at_the_calls_deadline():
    body = b'{"success": true, "errors": [], "result": [{"results": [], "success": true}]}' * 10
    server = Trickle(body)
    api = CloudflareApi(TOKEN, f"{server.url}/client/v4", attempts=1, deadline_s=0.5)
    try:
        with pytest.raises(CloudflareError) as info:
            D1Client(api, "acct").query("db", "DELETE FROM jobs WHERE id = ?", ["j1"])
    finally:
        api.close()
        server.close()
    message = str(info.value)
    assert "POST /accounts/acct/d1/database/db/query" in message and "within 0.5 s" in message
    assert "may have been applied" in message  # a /query may write: the operator must look before re-running
    assert TOKEN not in message
    assert not server.finished  # the client hung up instead of reading the answer to its end


def test_an_export_download_trickled_a_byte_at_a_time_ends_at_the_transfer_deadline(tmp_path: Path):
    dump = b"CREATE TABLE t (x);\n" * 50
    server = Trickle(dump, head=f"HTTP/1.1 200 OK\r\ncontent-length: {len(dump)}\r\n\r\n".encode())
    answer = {"success": True, "errors": [], "messages": [], "result": {
        "status": "complete", "at_bookmark": "b1", "result": {"filename": "x.sql", "signed_url": server.url}}}
    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4",
                        transport=httpx.MockTransport(lambda _request: httpx.Response(200, json=answer)))
    d1 = D1Client(api, "acct", transfer_deadline=lambda _size: 0.5)
    try:
        with pytest.raises(D1OperationFailed, match="downloading the D1 export did not finish within 0.5 s"):
            d1.export_sql("db", tmp_path / "backup.sql")
    finally:
        api.close()
        server.close()
    assert list(tmp_path.iterdir()) == []  # neither the target nor a partial file is left
    assert not server.finished


def test_a_backup_read_from_r2_trickled_a_byte_at_a_time_ends_at_the_transfer_deadline(tmp_path: Path):
    dump = b"CREATE TABLE t (x);\n" * 50
    server = Trickle(dump, head=f"HTTP/1.1 200 OK\r\ncontent-length: {len(dump)}\r\n\r\n".encode())
    r2 = R2Admin(server.url, "goldgate-test", "key-id", "secret", transfer_deadline=lambda _size: 0.5)
    try:
        with pytest.raises(R2Error, match="reading backups/x.sql from bucket goldgate-test did not finish within 0.5 s"):
            r2.fetch("backups/x.sql", tmp_path / "x.sql")
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []
    assert not server.finished


class SlowReader:
    """A 127.0.0.1 server that takes a PUT's body `rate` bytes every 10 ms and never answers."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.received = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/upload"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        with conn:
            while chunk := conn.recv(self.rate):
                self.received += len(chunk)
                time.sleep(0.01)

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


def test_an_import_upload_taken_slowly_ends_at_the_transfer_deadline():
    sql = b"INSERT INTO t VALUES (1);\n" * (1_300_000)  # 33 MB: more than the loopback buffers hold
    server = SlowReader(rate=64 * 1024)

    def api_answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": {
            "upload_url": server.url, "filename": "f.sql"}})

    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4",
                        transport=httpx.MockTransport(api_answer))
    d1 = D1Client(api, "acct", transfer_deadline=lambda _size: 0.5)
    try:
        with pytest.raises(D1OperationFailed, match="uploading the SQL file for import did not finish within 0.5"):
            d1.import_sql("db", sql)
    finally:
        api.close()
        server.close()
    assert server.received < len(sql)


# -- D1 /query params -------------------------------------------------------------------------------------

@pytest.fixture
def d1():
    with D1StandIn(TOKEN) as standin:
        api = CloudflareApi(TOKEN, standin.api_base)
        yield D1Client(api, standin.account_id), standin
        api.close()


def test_the_standin_refuses_query_params_that_are_not_strings_as_the_api_documents(d1):
    client, standin = d1
    db = client.create_database("review11-strict").uuid
    answer = httpx.post(f"{standin.api_base}/accounts/{standin.account_id}/d1/database/{db}/query",
                        headers={"Authorization": f"Bearer {TOKEN}"}, json={"sql": "SELECT ?", "params": [1]})
    assert answer.status_code == 400
    assert "array of strings" in answer.json()["errors"][0]["message"]


SCHEMA = "CREATE TABLE t (name TEXT, code TEXT, n INTEGER, r REAL, untyped)"
ROWS = [("abcd", "05", 10, 0.5, 10), ("ab", "5", 9, 2.0, 9), ("abc", None, 100, None, 2.5)]
# (sql, params): each a place where a number bound as TEXT would change the answer if sent as is
QUERIES = [
    ("SELECT name FROM t WHERE length(name) > ? ORDER BY name", [3]),          # no affinity: 4 > '3' is false
    ("SELECT name FROM t WHERE code = ? ORDER BY name", [5]),                  # TEXT column: '05' is not 5
    ("SELECT name FROM t WHERE untyped > ? ORDER BY name", [9]),               # stored numbers, not text
    ("SELECT untyped, typeof(untyped) AS type FROM t ORDER BY untyped", []),
    ("SELECT ? AS v, typeof(?) AS type, ?3 IS NULL AS none, ?4 AS yes", [2.5, 2.5, None, True]),
    ("SELECT name FROM t ORDER BY n LIMIT ? OFFSET ?", [1, 1]),
    ("SELECT CAST((n - ?2) / ?3 AS INTEGER) AS bin, ?1 IS NULL AS s FROM t ORDER BY n", [None, 9, 2]),
    ("SELECT name, r FROM t WHERE r >= ? AND name <> '?' -- a ? in a comment\nORDER BY name", [0.5]),
]


def test_query_params_go_as_strings_and_answer_as_sqlite_binds_them(d1):
    client, _standin = d1
    db = client.create_database("review11-params").uuid
    local = sqlite3.connect(":memory:")
    local.row_factory = lambda cur, row: {c[0]: v for c, v in zip(cur.description, row, strict=True)}
    for sql, params in [(SCHEMA, []), *[("INSERT INTO t VALUES (?, ?, ?, ?, ?)", list(r)) for r in ROWS]]:
        client.query(db, sql, params)
        local.execute(sql, params)
    for sql, params in QUERIES:
        expected: list[dict[str, Any]] = local.execute(sql, params).fetchall()
        assert client.query(db, sql, params) == expected, sql


def test_a_param_d1_cannot_carry_is_one_clear_error_naming_it(d1):
    client, _standin = d1
    db = client.create_database("review11-bytes").uuid
    with pytest.raises(CloudflareError, match=r"parameter 2 is bytes .* text, numbers and NULL only"):
        client.query(db, "SELECT ?, ?", ["a", b"\x00\x01"])
    # CAST would saturate 2**70 to 2**63 - 1 silently; sqlite3 refuses such an integer, and so does the client
    with pytest.raises(CloudflareError, match=r"parameter 1 is an integer outside SQLite's 64 bits"):
        client.query(db, "SELECT ?", [2**70])
    assert client.query(db, "SELECT ? AS n", [2**63 - 1]) == [{"n": 2**63 - 1}]


# -- the API token -----------------------------------------------------------------------------------------

def test_a_token_read_with_its_line_break_still_authenticates(d1):
    _client, standin = d1
    with CloudflareApi(TOKEN + "\r\n", standin.api_base) as api:
        assert D1Client(api, standin.account_id).create_database("review11-crlf").name == "review11-crlf"


@pytest.mark.parametrize("token", [TOKEN[:10] + "\n" + TOKEN[10:], TOKEN[:10] + " " + TOKEN[10:],
                                   TOKEN[:10] + "é" + TOKEN[10:]], ids=["line-break", "space", "non-ascii"])
def test_a_token_no_header_can_carry_is_refused_up_front_without_showing_it(token: str):
    with pytest.raises(CloudflareError) as info:
        CloudflareApi(token, "http://127.0.0.1:9/client/v4")
    message = str(info.value)
    assert "copy it again" in message
    assert TOKEN[:10] not in message and TOKEN[10:] not in message
