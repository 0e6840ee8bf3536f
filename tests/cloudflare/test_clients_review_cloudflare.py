"""Review of the Cloudflare API client: answers that are no API answer (a body without end, a body that
cannot be decoded, JSON of the wrong shape) end in one clear CloudflareError naming the call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from serving import EndlessBody

from goldgate.cloudflare.api import MAX_RESPONSE_BYTES, CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError, CloudflareNotFound

TOKEN = "cf-review-token-0123456789"


def test_a_body_without_end_is_cut_off_with_a_clear_error_not_read_whole():
    server = EndlessBody(502, cap=MAX_RESPONSE_BYTES + MAX_RESPONSE_BYTES // 2)
    api = CloudflareApi(TOKEN, f"http://127.0.0.1:{server.port}/client/v4", attempts=1)
    try:
        with pytest.raises(CloudflareError) as info:
            D1Client(api, "acct").query("db", "SELECT 1")
    finally:
        api.close()
        server.close()
    message = str(info.value)
    assert "/query" in message and "more than" in message and info.value.status == 502
    assert TOKEN not in message
    assert not server.finished  # the client stopped reading; it did not take in the whole stream


def _client(answer: Callable[[], httpx.Response]) -> D1Client:
    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", sleep=lambda _s: None,
                        transport=httpx.MockTransport(lambda _request: answer()))
    return D1Client(api, "acct", poll_interval_s=0.0, sleep=lambda _s: None)


def test_a_body_that_cannot_be_decoded_is_a_clear_error_naming_the_call():
    d1 = _client(lambda: httpx.Response(200, content=b"not gzip at all", headers={"content-encoding": "gzip"}))
    with pytest.raises(CloudflareError) as info:
        d1.query("db", "SELECT 1")
    assert "POST /accounts/acct/d1/database/db/query" in str(info.value) and "decoded" in str(info.value)
    assert TOKEN not in str(info.value)
    d1.api.close()


@pytest.mark.parametrize(("result", "call"), [
    (["not an object"], lambda d1, tmp: d1.query("db", "SELECT 1")),
    ([{"success": True, "results": "rows?"}], lambda d1, tmp: d1.query("db", "SELECT 1")),
    (["an export?"], lambda d1, tmp: d1.export_sql("db", tmp / "x.sql")),
    ({"status": "complete", "result": ["no url"]}, lambda d1, tmp: d1.export_sql("db", tmp / "x.sql")),
    ("importing", lambda d1, tmp: d1.import_sql("db", b"SELECT 1;")),
    ({"status": "complete", "result": "done"}, lambda d1, tmp: d1.import_sql("db", b"SELECT 1;")),
    ("bookmark", lambda d1, tmp: d1.bookmark("db")),
    ("restored", lambda d1, tmp: d1.restore("db", bookmark="b1")),
], ids=["query-row-set", "query-rows", "export", "export-result", "import", "import-result", "bookmark",
        "restore"])
def test_an_answer_of_the_wrong_shape_is_a_clear_error_not_a_traceback(result, call, tmp_path: Path):
    d1 = _client(lambda: httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": result}))
    with pytest.raises(CloudflareError) as info:
        call(d1, tmp_path)
    assert "db" in str(info.value) and "D1" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    d1.api.close()


def test_a_failed_statement_early_in_a_batch_is_not_passed_over():
    d1 = _client(lambda: httpx.Response(200, json={"success": True, "errors": [], "result": [
        {"success": False, "error": "UNIQUE constraint failed: jobs.id", "results": []},
        {"success": True, "results": [{"n": 1}]}]}))
    with pytest.raises(CloudflareError, match="UNIQUE constraint failed"):
        d1.query("db", "INSERT INTO jobs VALUES ('a'); SELECT 1 AS n")
    d1.api.close()


BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@pytest.mark.parametrize(("status", "body", "content_type"), [
    (502, BAD_GATEWAY, "text/html"),
    (500, b'{"success": false, "errors": [{"code": 7500, "message": "Internal error"}]}', "application/json"),
], ids=["html-page", "api-envelope"])
def test_a_5xx_on_a_write_says_it_may_have_applied_not_just_retry(status, body, content_type):
    with D1StandIn(TOKEN) as standin:
        api = CloudflareApi(TOKEN, standin.api_base, sleep=lambda _s: None)
        d1 = D1Client(api, standin.account_id)
        db = d1.create_database("goldgate-review-5xx").uuid
        d1.query(db, "CREATE TABLE jobs (id TEXT PRIMARY KEY)")
        standin.fail_with(status, body, {"Content-Type": content_type})
        with pytest.raises(CloudflareError) as info:
            d1.query(db, "INSERT INTO jobs VALUES ('a')")
        assert str(status) in str(info.value) and "may have been applied" in str(info.value)
        # A read is retried after the 5xx, and says nothing of the kind.
        standin.fail_with(status, body, {"Content-Type": content_type})
        assert d1.get_database(db).uuid == db
        api.close()


def test_a_delete_retried_after_a_5xx_that_had_deleted_it_is_done_not_not_found():
    """Cloudflare's edge can answer 502 after the API behind it deleted the database: the retry then finds
    nothing. The delete is done; the DR drill must not tell the operator to delete it by hand."""
    deleted: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and not deleted:
            deleted.append(request.url.path)
            return httpx.Response(502, content=BAD_GATEWAY, headers={"content-type": "text/html"})
        if request.method == "DELETE":
            return httpx.Response(404, json={"success": False, "errors": [{"code": 7404,
                                                                          "message": "database not found"}]})
        return httpx.Response(200, json={"success": True, "result": {"uuid": "db", "name": "n"}})

    api = CloudflareApi(TOKEN, "https://api.example.test/client/v4", sleep=lambda _s: None,
                        transport=httpx.MockTransport(handle))
    D1Client(api, "acct").delete_database("db")
    assert deleted == ["/client/v4/accounts/acct/d1/database/db"]
    # A database that was never there is still reported: the first answer was the 404.
    with pytest.raises(CloudflareNotFound):
        D1Client(api, "acct").delete_database("db")
    api.close()
