"""goldgate's D1 client against recorded answers in the shapes Cloudflare's API reference documents (no
stand-in in between), so a client change that drops or misreads a documented field fails here:

- import: init answers {filename, upload_url}; ingest must name that filename; a running import answers 202
  `active` with `at_bookmark`; the complete one 200 with result {final_bookmark, num_queries (a JSON number),
  meta (d1_query-meta)}: developers.cloudflare.com/api/resources/d1/subresources/database/methods/import/
- GET database: {uuid, name, created_at, version, num_tables, file_size, jurisdiction}:
  developers.cloudflare.com/api/resources/d1/subresources/database/methods/get/"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.errors import D1OperationFailed

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
DB = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
SQL = b"CREATE TABLE t (x TEXT);\nINSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('b');\n"
ETAG = hashlib.md5(SQL, usedforsecurity=False).hexdigest()
BOOKMARK = "00000001-00000002-00004e2f-0a83ea2fceebc654de0640c422be4653"
FINAL = "00000001-00000003-00004e30-1b94fb30dffcd765ef1751d533cf5764"
UPLOAD = "https://r2.example/import/upload?X-Amz-Signature=abc"
META = {"changed_db": True, "changes": 3, "duration": 12.5, "last_row_id": 2, "rows_read": 0,
        "rows_written": 3, "served_by_primary": True, "size_after": 16384,
        "timings": {"sql_duration_ms": 12.5}}


def envelope(result: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "errors": [], "messages": [], "result": result})


def client(answer: Callable[[dict], httpx.Response], sent: list[dict]) -> D1Client:
    def api(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/client/v4/accounts/{ACCOUNT}/d1/database/{DB}/import"
        body = json.loads(request.content)
        sent.append(body)
        return answer(body)

    def r2(request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT" and str(request.url) == UPLOAD
        sent.append({"put": hashlib.md5(request.read(), usedforsecurity=False).hexdigest()})
        return httpx.Response(200, headers={"ETag": f'"{ETAG}"'})

    cf = CloudflareApi("cf-token-0123456789", "https://api.cloudflare.com/client/v4",
                       transport=httpx.MockTransport(api), sleep=lambda _s: None)
    transfer = httpx.Client(transport=httpx.MockTransport(r2))
    return D1Client(cf, ACCOUNT, poll_interval_s=0.0, sleep=lambda _s: None, transfer=transfer)


def documented(num_queries: object = 3) -> Callable[[dict], httpx.Response]:
    def answer(body: dict) -> httpx.Response:
        if body["action"] == "init":
            return envelope({"filename": f"{DB}-{ETAG}.sql", "upload_url": UPLOAD})
        if body["action"] == "ingest":
            return envelope({"success": True, "type": "import", "at_bookmark": BOOKMARK, "status": "active",
                             "messages": ["Starting import"]}, 202)
        return envelope({"success": True, "type": "import", "at_bookmark": BOOKMARK, "status": "complete",
                         "messages": ["Import complete"],
                         "result": {"final_bookmark": FINAL, "num_queries": num_queries, "meta": META}})
    return answer


def test_import_sends_the_documented_actions_and_keeps_the_whole_documented_result() -> None:
    sent: list[dict] = []
    lines: list[str] = []
    imported = client(documented(), sent).import_sql(DB, SQL, progress=lines.append)
    assert sent == [{"action": "init", "etag": ETAG}, {"put": ETAG},
                    {"action": "ingest", "etag": ETAG, "filename": f"{DB}-{ETAG}.sql"},
                    {"action": "poll", "current_bookmark": BOOKMARK}]
    assert imported.final_bookmark == FINAL and imported.num_queries == 3
    assert imported.meta == META  # rows_written, size_after, duration: what the import did
    assert lines == ["import: Starting import", "import: Import complete"]


def test_num_queries_is_a_json_number_and_a_whole_float_counts() -> None:
    assert client(documented(3.0), []).import_sql(DB, SQL).num_queries == 3  # was read as 0


def test_an_init_answer_without_the_filename_to_ingest_by_is_refused_before_anything_is_uploaded() -> None:
    sent: list[dict] = []

    def answer(body: dict) -> httpx.Response:
        if body["action"] == "init":
            return envelope({"upload_url": UPLOAD})
        return documented()(body)

    with pytest.raises(D1OperationFailed, match="without the filename"):
        client(answer, sent).import_sql(DB, SQL)
    assert sent == [{"action": "init", "etag": ETAG}]  # no upload, no ingest naming no file


def test_get_database_keeps_the_documented_details() -> None:
    details = {"uuid": DB, "name": "my-database", "created_at": "2022-11-15T18:25:44.442097Z",
               "version": "production", "num_tables": 12, "file_size": 12, "jurisdiction": "eu",
               "read_replication": {"mode": "disabled"}}

    def api(request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and request.url.path.endswith(f"/d1/database/{DB}")
        return envelope(details)

    cf = CloudflareApi("cf-token-0123456789", "https://api.cloudflare.com/client/v4",
                       transport=httpx.MockTransport(api))
    database = D1Client(cf, ACCOUNT).get_database(DB)
    assert (database.uuid, database.name, database.created_at, database.file_size) == (
        DB, "my-database", "2022-11-15T18:25:44.442097Z", 12)
    assert (database.version, database.num_tables, database.jurisdiction) == ("production", 12, "eu")
