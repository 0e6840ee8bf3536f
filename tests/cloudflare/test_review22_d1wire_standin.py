"""The D1 stand-in answers in the shapes Cloudflare's API reference documents, end to end with goldgate's
client: a running export answers HTTP 202 `active` (as a running import does) and 200 once it ended; a
failed import carries its reason in `error` (a string) and nothing else; a complete import's `result.meta`
is the API's d1_query-meta (with `last_row_id`); `init` for a file D1 already holds starts its import
instead of asking for the file again; `/raw` answers {columns, rows}; a path the API has no route for
answers the documented failure envelope (code 7003, `result: null`).

Docs: developers.cloudflare.com/api/resources/d1/subresources/database/methods/{export,import,raw}/."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import D1OperationFailed

TOKEN = "cf-d1wire-token-0123456789abcdef"
DUMP = (b"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n"
        + b"".join(b"INSERT INTO t VALUES(%d,'row %d');\n" % (i, i) for i in range(1, 31)))


@dataclass
class Wire:
    standin: D1StandIn
    d1: D1Client
    http: httpx.Client

    def path(self, database: str, suffix: str) -> str:
        return f"/accounts/{self.standin.account_id}/d1/database/{database}{suffix}"


@pytest.fixture
def wire() -> Iterator[Wire]:
    with D1StandIn(TOKEN, export_polls=2, import_polls=1, import_wait_s=0.05) as standin, \
            CloudflareApi(TOKEN, standin.api_base) as api, \
            httpx.Client(base_url=standin.api_base, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=60.0) as http:
        yield Wire(standin, D1Client(api, standin.account_id, poll_interval_s=0.0), http)


def test_a_running_export_answers_202_active_and_an_ended_one_200_complete(wire: Wire, tmp_path) -> None:
    db = wire.d1.create_database("goldgate-wire-export").uuid
    wire.d1.query(db, "CREATE TABLE t (x TEXT)")
    first = wire.http.post(wire.path(db, "/export"), json={"output_format": "polling", "dump_options": {}})
    assert first.status_code == 202  # "Polled successfully, task is currently running"
    body = first.json()
    assert body["success"] is True and body["errors"] == []
    running = body["result"]
    assert running["status"] == "active" and running["type"] == "export" and running["success"] is True
    assert isinstance(running["at_bookmark"], str) and isinstance(running["messages"], list)
    statuses = []
    while True:
        answer = wire.http.post(wire.path(db, "/export"), json={
            "output_format": "polling", "current_bookmark": running["at_bookmark"]})
        statuses.append((answer.status_code, answer.json()["result"]["status"]))
        if answer.json()["result"]["status"] != "active":
            break
    assert statuses[-1] == (200, "complete") and all(s == (202, "active") for s in statuses[:-1])
    done = answer.json()["result"]
    assert done["at_bookmark"] == running["at_bookmark"] and set(done["result"]) == {"filename", "signed_url"}
    # and the client follows the 202s to the file
    exported = wire.d1.export_sql(db, tmp_path / "out.sql")
    assert "CREATE TABLE t (x TEXT)" in exported.path.read_text()


def test_a_failed_import_gives_its_reason_in_error_only_and_the_client_reports_it(wire: Wire) -> None:
    db = wire.d1.create_database("goldgate-wire-import-fail").uuid
    with pytest.raises(D1OperationFailed, match="no such table: nope"):
        wire.d1.import_sql(db, DUMP + b"INSERT INTO nope VALUES (1);\n")
    bookmark = wire.d1.bookmark(db)
    failed = wire.http.post(wire.path(db, "/import"), json={"action": "poll", "current_bookmark": bookmark})
    answer = failed.json()["result"]
    assert failed.status_code == 200 and answer["status"] == "error" and answer["type"] == "import"
    assert "no such table: nope" in answer["error"]
    # the documented fields only: `errors` is the envelope's ({code, message} objects), not the task's
    assert set(answer) <= {"success", "type", "at_bookmark", "status", "error", "messages"}


def test_a_complete_import_answers_the_documented_result_and_the_client_keeps_its_meta(wire: Wire) -> None:
    db = wire.d1.create_database("goldgate-wire-import").uuid
    imported = wire.d1.import_sql(db, DUMP)
    assert imported.num_queries == 31
    assert imported.final_bookmark == wire.d1.bookmark(db)
    meta = imported.meta
    assert {"changed_db", "changes", "duration", "last_row_id", "rows_read", "rows_written",
            "size_after"} <= set(meta)
    assert meta["last_row_id"] == 30 and meta["rows_written"] >= 30
    assert meta["size_after"] == wire.d1.database_size(db)


def test_init_for_a_file_d1_already_holds_starts_its_import_without_asking_for_the_file(wire: Wire) -> None:
    db = wire.d1.create_database("goldgate-wire-reinit").uuid
    wire.d1.import_sql(db, DUMP)
    wire.d1.query(db, "DROP TABLE t")
    puts = sum(1 for method, _path in wire.standin.requests if method == "PUT")
    lines: list[str] = []
    again = wire.d1.import_sql(db, DUMP, progress=lines.append)  # the client follows init's poll answer
    assert again.num_queries == 31 and wire.d1.query(db, "SELECT count(*) AS n FROM t") == [{"n": 30}]
    assert "import: file already uploaded; D1 is processing it" in lines
    assert sum(1 for method, _path in wire.standin.requests if method == "PUT") == puts  # not uploaded again

    wire.d1.query(db, "DROP TABLE t")
    etag = hashlib.md5(DUMP, usedforsecurity=False).hexdigest()
    init = wire.http.post(wire.path(db, "/import"), json={"action": "init", "etag": etag})
    result = init.json()["result"]
    assert "upload_url" not in result and result["type"] == "import"
    assert (init.status_code, result["status"]) in ((202, "active"), (200, "complete"))
    assert isinstance(result["at_bookmark"], str)
    while result["status"] == "active":
        result = wire.http.post(wire.path(db, "/import"), json={
            "action": "poll", "current_bookmark": result["at_bookmark"]}).json()["result"]
    assert result["status"] == "complete" and result["result"]["num_queries"] == 31


def test_raw_answers_columns_and_rows_as_arrays(wire: Wire) -> None:
    db = wire.d1.create_database("goldgate-wire-raw").uuid
    wire.d1.query(db, "CREATE TABLE t (a INTEGER, b TEXT)")
    wire.d1.query(db, "INSERT INTO t VALUES (1, 'x'), (2, 'y')")
    answer = wire.http.post(wire.path(db, "/raw"), json={"sql": "SELECT a, b, a AS a FROM t ORDER BY a"})
    assert answer.status_code == 200
    [statement] = answer.json()["result"]
    assert statement["success"] is True
    assert statement["results"] == {"columns": ["a", "b", "a"], "rows": [[1, "x", 1], [2, "y", 2]]}
    assert statement["meta"]["rows_read"] == 2 and "size_after" in statement["meta"]


def test_no_route_answers_the_documented_failure_envelope(wire: Wire) -> None:
    db = wire.d1.create_database("goldgate-wire-route").uuid
    answer = wire.http.post(wire.path(db, "/nothing-here"), json={})
    assert answer.status_code == 404
    assert answer.json() == {"success": False, "errors": [{"code": 7003, "message": "No route for the URI"}],
                             "messages": [], "result": None}
