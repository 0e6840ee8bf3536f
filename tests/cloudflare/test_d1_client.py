"""The D1 REST client against the loopback stand-in: queries, export polling, import, time travel."""

from __future__ import annotations

import hashlib
import json
import time
import tracemalloc
from datetime import UTC, datetime

import httpx
import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import (
    CloudflareAuthError,
    CloudflareError,
    CloudflareNotFound,
    CloudflareRateLimited,
    D1OperationFailed,
)

TOKEN = "cf-test-token-0123456789"


@pytest.fixture
def standin():
    with D1StandIn(TOKEN, export_polls=3, import_polls=2) as s:
        yield s


@pytest.fixture
def d1(standin):
    api = CloudflareApi(TOKEN, standin.api_base)
    client = D1Client(api, standin.account_id, poll_interval_s=0.0)
    yield client
    api.close()


def _seed(d1: D1Client, db: str) -> None:
    d1.query(db, "CREATE TABLE jobs (id TEXT PRIMARY KEY, note TEXT)")
    d1.query(db, "INSERT INTO jobs VALUES (?, ?)", ["a", "line one\n-- not a comment\nline three"])
    d1.query(db, "INSERT INTO jobs VALUES (?, ?)", ["b", "it's quoted"])


def test_query_returns_rows_of_the_last_statement(d1):
    db = d1.create_database("goldgate-test").uuid
    _seed(d1, db)
    rows = d1.query(db, "SELECT id, note FROM jobs ORDER BY id")
    assert [r["id"] for r in rows] == ["a", "b"]
    assert rows[1]["note"] == "it's quoted"


def test_stream_pages_through_a_table_in_order(d1):
    db = d1.create_database("goldgate-stream").uuid
    d1.query(db, "CREATE TABLE n (i INTEGER PRIMARY KEY)")
    d1.query(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 23) "
                 "INSERT INTO n SELECT x FROM c")
    got = [r["i"] for r in d1.stream(db, "SELECT i FROM n ORDER BY i", page_rows=5)]
    assert got == list(range(1, 24))


def test_export_polls_until_complete_and_downloads_the_signed_url_to_the_file(standin, d1, tmp_path):
    db = d1.create_database("goldgate-export").uuid
    _seed(d1, db)
    export = d1.export_sql(db, tmp_path / "export.sql")
    assert export.path == tmp_path / "export.sql"
    text = export.path.read_text()
    assert "CREATE TABLE jobs" in text and "it''s quoted" in text
    assert "BEGIN TRANSACTION" not in text
    data = export.path.read_bytes()
    assert export.bytes == len(data) and export.sha256 == hashlib.sha256(data).hexdigest()
    assert sorted(tmp_path.iterdir()) == [export.path]  # no temporary file left beside it
    polls = [p for m, p in standin.requests if p.endswith("/export")]
    assert len(polls) == 4  # three "active" answers, then "complete"
    assert export.at_bookmark


def test_an_export_is_streamed_to_disk_never_held_whole_in_memory(d1, tmp_path):
    db = d1.create_database("goldgate-big").uuid
    d1.query(db, "CREATE TABLE blobs (i INTEGER PRIMARY KEY, body TEXT)")
    d1.query(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 16000) "
                 "INSERT INTO blobs SELECT x, hex(randomblob(512)) FROM c")
    tracemalloc.start()
    try:
        export = d1.export_sql(db, tmp_path / "big.sql")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = export.path.stat().st_size
    assert export.bytes == size > 16_000 * 1024  # every row arrived
    # Python memory (client and stand-in alike) stays a small fraction of the dump: it went to disk in chunks
    assert peak < size // 4, f"peak {peak} bytes for a {size}-byte export"


def test_an_export_download_cut_short_leaves_nothing_under_the_final_name(standin, d1, tmp_path):
    db = d1.create_database("goldgate-cut").uuid
    _seed(d1, db)
    target = tmp_path / "export.sql"
    target.write_bytes(b"-- the previous export\n")
    standin.backend.cut_next_download_at = 100
    with pytest.raises(D1OperationFailed) as info:
        d1.export_sql(db, target)
    assert "cut short" in str(info.value) and "run the export again" in str(info.value)
    assert target.read_bytes() == b"-- the previous export\n"  # untouched, not replaced by a truncated dump
    assert sorted(tmp_path.iterdir()) == [target]  # and no partial file left beside it


def test_an_export_download_refused_by_storage_writes_nothing(standin, d1, tmp_path):
    db = d1.create_database("goldgate-expired").uuid
    _seed(d1, db)
    standin.backend.signed_urls_expire = True
    with pytest.raises(D1OperationFailed, match="answered 403.*run the export again"):
        d1.export_sql(db, tmp_path / "export.sql")
    assert list(tmp_path.iterdir()) == []


def test_import_runs_init_upload_ingest_poll_and_reproduces_the_data(standin, d1, tmp_path):
    source = d1.create_database("goldgate-src").uuid
    _seed(d1, source)
    export = d1.export_sql(source, tmp_path / "src.sql")
    scratch = d1.create_database("goldgate-scratch").uuid
    result = d1.import_sql(scratch, export.path.read_bytes())
    assert result.num_queries >= 3 and result.final_bookmark
    assert d1.query(scratch, "SELECT id, note FROM jobs ORDER BY id") == d1.query(
        source, "SELECT id, note FROM jobs ORDER BY id")
    steps = [(m, "upload" if "/_signed/imports/" in p else "import") for m, p in standin.requests
             if "/import" in p and scratch in p or "/_signed/imports/" in p]
    # init, upload to the signed URL, ingest, then two "active" polls and the final one
    assert steps == [("POST", "import"), ("PUT", "upload"), ("POST", "import"), ("POST", "import"),
                     ("POST", "import")]


def test_an_import_from_a_file_is_hashed_and_uploaded_streamed_never_held_whole_in_memory(standin, d1, tmp_path):
    source = d1.create_database("goldgate-big-src").uuid
    d1.query(source, "CREATE TABLE blobs (i INTEGER PRIMARY KEY, body TEXT)")
    d1.query(source, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 16000) "
                     "INSERT INTO blobs SELECT x, hex(randomblob(512)) FROM c")
    export = d1.export_sql(source, tmp_path / "big.sql")
    scratch = d1.create_database("goldgate-big-scratch").uuid
    tracemalloc.start()
    try:
        result = d1.import_sql(scratch, export.path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.num_queries == 16_002  # the PRAGMA, the CREATE TABLE and each row's INSERT
    assert d1.query(scratch, "SELECT count(*) AS n, sum(length(body)) AS b FROM blobs") == [
        {"n": 16_000, "b": 16_000 * 1024}]
    # The stand-in's time-travel snapshot of the imported database is one copy of the data; the client
    # and the stand-in's upload and ingest add only chunks to it.
    assert peak < export.bytes * 3 // 2, f"peak {peak} bytes for a {export.bytes}-byte import"


def test_an_import_upload_cut_short_imports_nothing(standin, d1, tmp_path):
    source = d1.create_database("goldgate-cut-src").uuid
    _seed(d1, source)
    export = d1.export_sql(source, tmp_path / "src.sql")
    scratch = d1.create_database("goldgate-cut-scratch").uuid
    standin.backend.cut_next_upload_at = 100
    with pytest.raises(D1OperationFailed, match="uploading the SQL file for import failed.*retry the import"):
        d1.import_sql(scratch, export.path)
    assert standin.backend.uploads == {}  # as with R2, an upload cut short stores nothing
    assert [m for m, p in standin.requests if p.endswith(f"{scratch}/import")] == ["POST"]  # init; no ingest
    assert d1.query(scratch, "SELECT count(*) AS n FROM sqlite_master WHERE name = 'jobs'") == [{"n": 0}]


def test_a_refused_import_raises_with_the_reason(standin, d1):
    db = d1.create_database("goldgate-refuse").uuid
    standin.backend.fail_next_import = "SQLITE_CONSTRAINT: UNIQUE constraint failed"
    with pytest.raises(D1OperationFailed, match="UNIQUE constraint failed"):
        d1.import_sql(db, b"CREATE TABLE t (x);\n")


def test_import_of_broken_sql_fails_and_leaves_the_database_as_it_was(d1):
    db = d1.create_database("goldgate-broken").uuid
    d1.query(db, "CREATE TABLE t (x)")
    with pytest.raises(D1OperationFailed, match="failed"):
        d1.import_sql(db, b"INSERT INTO t VALUES (1);\nINSERT INTO nope VALUES (2);\n")
    assert d1.query(db, "SELECT count(*) AS n FROM t") == [{"n": 0}]


def test_time_travel_restore_returns_a_bookmark_that_undoes_it(d1):
    db = d1.create_database("goldgate-tt").uuid
    _seed(d1, db)
    before_delete = d1.bookmark(db)
    d1.query(db, "DELETE FROM jobs")
    assert d1.query(db, "SELECT count(*) AS n FROM jobs") == [{"n": 0}]
    restored = d1.restore(db, bookmark=before_delete)
    assert d1.query(db, "SELECT count(*) AS n FROM jobs") == [{"n": 2}]
    assert restored.previous_bookmark and restored.bookmark
    d1.restore(db, bookmark=restored.previous_bookmark)  # undo the restore
    assert d1.query(db, "SELECT count(*) AS n FROM jobs") == [{"n": 0}]


def test_time_travel_by_timestamp_picks_the_state_at_that_time(d1):
    db = d1.create_database("goldgate-ts").uuid
    _seed(d1, db)
    time.sleep(0.05)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    d1.query(db, "INSERT INTO jobs VALUES ('c', 'later')")
    d1.restore(db, timestamp=moment)
    assert [r["id"] for r in d1.query(db, "SELECT id FROM jobs ORDER BY id")] == ["a", "b"]


def test_restore_needs_exactly_one_target(d1):
    with pytest.raises(D1OperationFailed, match="exactly one"):
        d1.restore("x", bookmark="a", timestamp="b")


def test_wrong_token_is_an_auth_error_without_the_token_in_it(standin):
    api = CloudflareApi("wrong-token-value", standin.api_base)
    with pytest.raises(CloudflareAuthError) as info:
        D1Client(api, standin.account_id).create_database("x-db")
    assert "wrong-token-value" not in str(info.value)
    api.close()


def test_unknown_database_is_not_found(d1):
    with pytest.raises(CloudflareNotFound):
        d1.query("00000000-0000-0000-0000-000000000000", "SELECT 1")


def test_bad_sql_is_a_clear_error(d1):
    db = d1.create_database("goldgate-bad").uuid
    with pytest.raises(CloudflareError, match="no such table"):
        d1.query(db, "SELECT * FROM missing")


def test_unreachable_api_is_a_clear_error():
    api = CloudflareApi(TOKEN, "http://127.0.0.1:9/client/v4")
    with pytest.raises(CloudflareError, match="cannot reach"):
        D1Client(api, "acct").get_database("x")
    api.close()


def test_missing_token_is_refused_up_front():
    with pytest.raises(CloudflareAuthError, match="CLOUDFLARE_API_TOKEN"):
        CloudflareApi("")


def test_an_html_5xx_from_cloudflare_says_retry_not_check_the_url():
    page = "<html><title>502 Bad Gateway</title><body>cloudflare</body></html>"
    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", transport=httpx.MockTransport(
        lambda request: httpx.Response(502, text=page, headers={"content-type": "text/html"})))
    with pytest.raises(CloudflareError) as info:
        D1Client(api, "acct").query("db", "SELECT 1")
    message = str(info.value)
    assert info.value.status == 502 and "502" in message and "retry" in message
    assert "check the API base URL" not in message
    api.close()


BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@pytest.fixture
def slept():
    return []


@pytest.fixture
def patient_d1(standin, slept):
    """A client whose waits are recorded instead of slept, so a test can read them."""
    api = CloudflareApi(TOKEN, standin.api_base, sleep=slept.append)
    yield D1Client(api, standin.account_id, poll_interval_s=0.0, sleep=slept.append)
    api.close()


def test_a_rate_limited_call_waits_out_retry_after_then_succeeds(standin, patient_d1, slept):
    db = patient_d1.create_database("goldgate-throttled").uuid
    standin.rate_limit(retry_after_s=7, times=2)
    assert patient_d1.query(db, "SELECT 1 AS one") == [{"one": 1}]
    assert slept == [7, 7]
    assert len([p for _, p in standin.requests if p.endswith("/query")]) == 3


def test_a_rate_limit_longer_than_a_minute_is_reported_with_the_wait_not_slept(standin, patient_d1, slept):
    db = patient_d1.create_database("goldgate-blocked").uuid
    standin.rate_limit(retry_after_s=300)
    with pytest.raises(CloudflareRateLimited) as info:
        patient_d1.query(db, "SELECT 1")
    assert info.value.status == 429 and info.value.retry_after_s == 300 and 971 in info.value.codes
    assert "300 s" in str(info.value) and slept == []


def test_a_5xx_on_a_read_is_retried_but_a_query_that_may_write_is_not(standin, patient_d1, slept):
    db = patient_d1.create_database("goldgate-flaky").uuid
    standin.fail_with(502, BAD_GATEWAY)
    assert patient_d1.get_database(db).uuid == db and len(slept) == 1
    standin.fail_with(502, BAD_GATEWAY)
    with pytest.raises(CloudflareError, match="502"):
        patient_d1.query(db, "CREATE TABLE t (x)")
    assert len([p for _, p in standin.requests if p.endswith("/query")]) == 1


def test_an_export_survives_a_5xx_between_its_polls(standin, patient_d1, tmp_path):
    db = patient_d1.create_database("goldgate-export-5xx").uuid
    _seed(patient_d1, db)
    standin.fail_with(502, BAD_GATEWAY, after=2)  # the export starts, is polled once, then the edge fails
    assert b"CREATE TABLE jobs" in patient_d1.export_sql(db, tmp_path / "export.sql").path.read_bytes()
    assert len([p for _, p in standin.requests if p.endswith("/export")]) == 5  # 4 answers + the 502


def test_a_query_lost_in_transit_is_not_retried_and_says_it_may_have_applied():
    calls = []

    def drop(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("timed out", request=request)

    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", transport=httpx.MockTransport(drop),
                        sleep=lambda _s: None)
    with pytest.raises(CloudflareError) as info:
        D1Client(api, "acct").query("db", "INSERT INTO jobs VALUES ('c', 'x')")
    assert calls == ["POST"]
    assert "may have been applied" in str(info.value) and "cannot reach" not in str(info.value)
    assert TOKEN not in str(info.value)
    calls.clear()
    with pytest.raises(CloudflareError, match="after 4 attempts"):
        D1Client(api, "acct").get_database("db")
    assert calls == ["GET"] * 4
    api.close()


def test_a_database_id_with_path_characters_never_reaches_another_database(standin, d1):
    keep = d1.create_database("goldgate-keep").uuid
    other = d1.create_database("goldgate-other").uuid
    for hostile in (f"{other}/../{keep}", f"{keep}?x=1", f"{keep}#frag", f"{other}%2F..%2F{keep}"):
        with pytest.raises(CloudflareNotFound):
            d1.delete_database(hostile)
    for dots in ("..", "."):
        with pytest.raises(CloudflareError, match="database id"):
            d1.delete_database(dots)
    with pytest.raises(CloudflareError, match="account id"):
        D1Client(d1.api, "..")
    with pytest.raises(CloudflareAuthError):  # one segment that is not this account, not another path
        D1Client(d1.api, f"../accounts/{standin.account_id}").delete_database(keep)
    assert {keep, other} <= set(standin.backend.databases)


# -- listing databases ---------------------------------------------------------------------------

def _fill(standin: D1StandIn, prefix: str, count: int) -> None:
    with standin.backend.lock:
        for i in range(count):
            standin.backend.create(f"{prefix}-{i:05d}")


def _list_answer(standin: D1StandIn, **params: object) -> httpx.Response:
    return httpx.get(f"{standin.api_base}/accounts/{standin.account_id}/d1/database", params=params,
                     headers={"Authorization": f"Bearer {TOKEN}"})


def test_the_standin_pages_the_database_list_as_cloudflare_documents(standin):
    _fill(standin, "goldgate-page", 25)
    pages = [_list_answer(standin, per_page=10, page=n).json() for n in (1, 2, 3, 4)]
    assert [len(p["result"]) for p in pages] == [10, 10, 5, 0]
    assert [p["result_info"] for p in pages[:3]] == [
        {"page": n, "per_page": 10, "count": c, "total_count": 25} for n, c in ((1, 10), (2, 10), (3, 5))]
    names = [d["name"] for p in pages for d in p["result"]]
    assert sorted(names) == sorted(d.name for d in standin.backend.databases.values())  # each once
    for bad in ({"per_page": 9}, {"per_page": 10_001}, {"page": 0}, {"per_page": "ten"}):
        answer = _list_answer(standin, **bad)
        assert answer.status_code == 400 and answer.json()["success"] is False


def test_listing_follows_every_page_and_finds_a_database_past_the_first(standin, d1):
    _fill(standin, "goldgate-staging-drill", 25)
    stack = d1.create_database("goldgate-staging").uuid
    listed = d1.list_databases(name="goldgate-staging", per_page=10)
    assert len(listed) == 26 and [d.uuid for d in listed if d.name == "goldgate-staging"] == [stack]
    assert len([p for m, p in standin.requests if m == "GET" and p.endswith("/d1/database")]) == 3


def test_a_listing_longer_than_the_page_bound_is_an_error_not_a_partial_answer(standin, d1):
    _fill(standin, "goldgate-many", 35)
    with pytest.raises(CloudflareError, match="more than 3 pages"):
        d1.list_databases(per_page=10, max_pages=3)


def test_a_list_api_that_ignores_the_page_asked_for_is_an_error_not_a_loop():
    def same_page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": [
            {"uuid": f"u{i}", "name": f"db-{i}"} for i in range(10)],
            "result_info": {"page": 1, "per_page": 10, "count": 10, "total_count": 40}})

    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", transport=httpx.MockTransport(same_page))
    with pytest.raises(CloudflareError, match="asked for page 2"):
        D1Client(api, "acct").list_databases(per_page=10)
    api.close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_even_with_a_success_envelope(status):
    # Followed or not, a redirect means the API base is wrong (or something answers in its place): the call
    # did not reach the resource it names, whatever the body claims.
    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", transport=httpx.MockTransport(
        lambda request: httpx.Response(status, headers={"location": "https://elsewhere.test/"},
                                       json={"success": True, "errors": [], "messages": [], "result": {"ok": 1}})))
    with pytest.raises(CloudflareError, match=f"{status}.*redirect.*elsewhere.test.*API base"):
        api.call("DELETE", "/accounts/a/d1/database/b")


def test_an_import_d1_refuses_says_why_in_the_words_d1_used():
    # D1 reports a failed import as `status: "error"` with its reasons in `errors` (a list), as wrangler reads it.
    sql = b"INSER INTO t VALUES (1);\n"
    etag = hashlib.md5(sql, usedforsecurity=False).hexdigest()

    def cloudflare(request: httpx.Request) -> httpx.Response:
        action = json.loads(request.content)["action"]
        result = ({"filename": "f.sql", "upload_url": "https://upload.example.test/f.sql"} if action == "init" else
                  {"success": True, "type": "import", "status": "error", "at_bookmark": "0000-1", "messages": [],
                   "errors": ['near "INSER": syntax error at offset 0: SQLITE_ERROR']})
        return httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": result})

    def r2(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"ETag": f'"{etag}"'})

    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", transport=httpx.MockTransport(cloudflare))
    client = D1Client(api, "acct", poll_interval_s=0.0, transfer=httpx.Client(transport=httpx.MockTransport(r2)))
    with pytest.raises(D1OperationFailed, match='near "INSER": syntax error') as info:
        client.import_sql("db", sql)
    assert "no reason given" not in str(info.value)
    api.close()


def test_a_query_ending_in_a_comment_runs_as_on_d1(d1):
    db = d1.create_database("goldgate-comment").uuid
    assert d1.query(db, "SELECT 1 AS n -- the last line is a comment") == [{"n": 1}]
    assert d1.query(db, "CREATE TABLE t (x); INSERT INTO t VALUES ('a;b'); SELECT x FROM t") == [{"x": "a;b"}]
