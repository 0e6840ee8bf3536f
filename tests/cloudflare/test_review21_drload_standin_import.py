"""The D1 stand-in's import as the API documents it: `ingest` starts the import and answers at once, `active`
(HTTP 202, "task is currently running") with the bookmark the database was at, which stays the same while it
runs; the import runs meanwhile, blocking the database; `poll` by that bookmark follows it to `complete` (its
own final bookmark) or to `error` (with its reason), a failed one leaving the database as it was. The stand-in
used to run the whole file inside the ingest request, so goldgate's polling was never exercised while an
import ran."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError, D1OperationFailed

TOKEN = "cf-async-import-token-0123456789"
ROWS = 540  # more than the 500 rows the stand-in runs as one statement (d1.DUMP_BATCH_ROWS)
DUMP = ("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n"
        + "".join(f"INSERT INTO t VALUES({i},'row {i}; it''s here');\n" for i in range(ROWS))).encode()


@dataclass
class Setup:
    standin: D1StandIn
    d1: D1Client
    http: httpx.Client

    def tables(self, database: str) -> list[str]:
        """The database's tables as the stand-in holds them, read beside the API (which an import blocks)."""
        with self.standin.backend.lock:
            rows = self.standin.backend.databases[database].conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != '_cf_KV' ORDER BY name"
            ).fetchall()
        return [name for (name,) in rows]

    def post(self, database: str, body: dict) -> httpx.Response:
        return self.http.post(f"/accounts/{self.standin.account_id}/d1/database/{database}/import", json=body)

    def upload(self, database: str, sql: bytes) -> dict:
        """init and the PUT to its signed URL: the body `ingest` takes."""
        etag = hashlib.md5(sql, usedforsecurity=False).hexdigest()
        init = self.post(database, {"action": "init", "etag": etag}).json()["result"]
        put = httpx.put(init["upload_url"], content=sql, headers={"Content-Length": str(len(sql))})
        assert put.status_code == 200
        return {"action": "ingest", "etag": etag, "filename": init["filename"]}

    def poll_until_ended(self, database: str, bookmark: str) -> httpx.Response:
        for _ in range(500):  # each poll waits for the import a little (import_wait_s): no busy loop
            answer = self.post(database, {"action": "poll", "current_bookmark": bookmark})
            if answer.json()["result"]["status"] != "active":
                return answer
        raise AssertionError("the import never ended")


@pytest.fixture
def setup() -> Iterator[Setup]:
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api, httpx.Client(
            base_url=standin.api_base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60.0) as http:
        standin.backend.import_wait_s = 0.05
        standin.backend.hold_imports = threading.Event()  # each import waits for the test before it runs
        yield Setup(standin, D1Client(api, standin.account_id, poll_interval_s=0.0), http)
        standin.backend.hold_imports.set()


def test_ingest_answers_while_the_import_runs_and_poll_follows_it_to_complete(setup: Setup) -> None:
    db = setup.d1.create_database("goldgate-async").uuid
    before = setup.d1.bookmark(db)
    ingest = setup.post(db, setup.upload(db, DUMP))
    assert ingest.status_code == 202
    answer = ingest.json()["result"]
    assert answer["status"] == "active" and answer["at_bookmark"] == before
    assert setup.tables(db) == []  # the answer came before the import ran
    poll = setup.post(db, {"action": "poll", "current_bookmark": before})
    assert poll.status_code == 202 and poll.json()["result"]["status"] == "active"
    assert poll.json()["result"]["at_bookmark"] == before

    setup.standin.backend.hold_imports.set()
    done = setup.poll_until_ended(db, before)
    assert done.status_code == 200
    result = done.json()["result"]
    assert result["status"] == "complete" and result["at_bookmark"] == before
    assert result["result"]["num_queries"] == ROWS + 2  # the PRAGMA, the CREATE TABLE and each row's INSERT
    assert result["result"]["final_bookmark"] == setup.d1.bookmark(db) != before
    assert setup.d1.query(db, "SELECT count(*) AS n FROM t") == [{"n": ROWS}]
    assert setup.d1.query(db, "SELECT v FROM t WHERE id = 7") == [{"v": "row 7; it's here"}]


def test_a_failing_import_is_reported_by_poll_with_its_error_and_the_database_stays_as_it_was(
        setup: Setup) -> None:
    db = setup.d1.create_database("goldgate-async-fail").uuid
    setup.d1.query(db, "CREATE TABLE kept (x TEXT)")
    setup.d1.query(db, "INSERT INTO kept VALUES ('before')")
    before = setup.d1.bookmark(db)
    ingest = setup.post(db, setup.upload(db, DUMP + b"INSERT INTO nope VALUES (1);\n"))
    assert ingest.status_code == 202 and ingest.json()["result"]["status"] == "active"

    setup.standin.backend.hold_imports.set()
    failed = setup.poll_until_ended(db, before).json()["result"]
    assert failed["status"] == "error" and failed["at_bookmark"] == before
    assert "no such table: nope" in failed["error"]  # as the API documents it: `error`, a string
    assert setup.tables(db) == ["kept"]  # none of the file's statements stayed, though all but its last ran
    assert setup.d1.query(db, "SELECT x FROM kept") == [{"x": "before"}]
    assert setup.d1.bookmark(db) == before


def test_a_database_being_imported_refuses_queries_until_the_import_is_complete(setup: Setup) -> None:
    db = setup.d1.create_database("goldgate-async-block").uuid
    before = setup.d1.bookmark(db)
    setup.post(db, setup.upload(db, DUMP))
    with pytest.raises(CloudflareError, match="being imported into: imports block the D1"):
        setup.d1.query(db, "SELECT 1 AS one")
    setup.standin.backend.hold_imports.set()
    assert setup.poll_until_ended(db, before).json()["result"]["status"] == "complete"
    assert setup.d1.query(db, "SELECT count(*) AS n FROM t") == [{"n": ROWS}]


def test_the_client_polls_an_import_under_way_until_it_is_complete(setup: Setup) -> None:
    db = setup.d1.create_database("goldgate-async-client").uuid
    heard: list[tuple[str, list[str]]] = []

    def progress(line: str) -> None:
        heard.append((line, setup.tables(db)))
        setup.standin.backend.hold_imports.set()  # the import goes on once the client has heard it is running

    result = setup.d1.import_sql(db, DUMP, progress)
    assert heard[0] == ("import: Importing", [])  # told of the import while none of it had run
    assert heard[-1] == ("import: Import complete", ["t"])
    assert result.num_queries == ROWS + 2 and result.final_bookmark == setup.d1.bookmark(db)
    calls = [path for method, path in setup.standin.requests if path.endswith(f"{db}/import")]
    assert len(calls) >= 3  # init, ingest, then at least one poll


def test_an_import_checking_foreign_keys_at_each_statement_fails_as_its_statements_alone_would(
        setup: Setup) -> None:
    """Without defer_foreign_keys a key is checked as each INSERT ends: a row naming a later row is refused,
    even though the stand-in runs a file's rows a few hundred to a statement."""
    setup.standin.backend.hold_imports.set()
    rows = "".join(f"INSERT INTO p VALUES({i},{i + 1 if i == 5 else 'NULL'});\n" for i in range(1, 20))
    schema = "CREATE TABLE p (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES p(id));\n"
    db = setup.d1.create_database("goldgate-async-fk").uuid
    with pytest.raises(D1OperationFailed, match="FOREIGN KEY constraint failed"):
        setup.d1.import_sql(db, (schema + rows).encode())
    assert setup.tables(db) == []
    deferred = "PRAGMA defer_foreign_keys=TRUE;\n" + schema + rows  # each key checked at the end
    setup.d1.import_sql(db, deferred.encode())
    assert setup.d1.query(db, "SELECT count(*) AS n FROM p WHERE parent = 6") == [{"n": 1}]
