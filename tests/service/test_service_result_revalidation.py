"""Result downloads are revalidated, not re-downloaded: a strong ETag (and Last-Modified) on every answer,
If-None-Match answered 304 from the store's HEAD alone, auth checked first. Core App over moto S3."""

from __future__ import annotations

import re
import uuid
from email.utils import formatdate
from typing import Any

import pytest
from service_testkit import BUCKET, WEBHOOK_SECRET

from service.http import content_disposition, entity_tag, if_none_match_fails
from service.signing import result_signature

DATA = b"\x89PNG" + bytes(range(256)) * 20


class RecordingStore:
    """The real S3 store, noting which calls reach it: a revalidation must never GET the object."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[str] = []

    async def head(self, key: str) -> Any:
        self.calls.append("head")
        return await self.store.head(key)

    async def get(self, key: str) -> Any:
        self.calls.append("get")
        return await self.store.get(key)


@pytest.fixture
def stored(svc) -> tuple[str, str, str]:
    """A result in the store: its key, the store's own ETag and its Last-Modified as an HTTP-date."""
    key = svc.put_result(uuid.uuid4().hex, name="0.png", data=DATA)["key"]  # one moto server for the session
    meta = svc.s3.head_object(Bucket=BUCKET, Key=key)
    svc.app.store = RecordingStore(svc.app.store)
    return key, meta["ETag"], formatdate(meta["LastModified"].timestamp(), usegmt=True)


def test_get_and_head_carry_the_stores_strong_etag_last_modified_and_an_inline_filename(svc, stored):
    key, etag, modified = stored
    assert re.fullmatch(r'"[^"]+"', etag)  # S3 hands its ETag out quoted, as RFC 9110 8.8.3 spells it
    for method in ("GET", "HEAD"):
        status, body, headers = svc.call(method, f"/api/result/{key}")
        assert status == 200 and body == (DATA if method == "GET" else b""), method
        assert headers["etag"] == etag and headers["last-modified"] == modified, method
        assert headers["content-disposition"] == 'inline; filename="0.png"', method
        assert headers["cache-control"] == "private, max-age=300", method  # bearer and signed URLs: never shared


@pytest.mark.parametrize("condition", ["{etag}", "W/{etag}", '"stale", W/{etag}', ' "a" ,, {etag} ', "*"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_matching_if_none_match_is_304_with_the_validators_and_no_body_read(svc, stored, condition, method):
    key, etag, modified = stored
    status, body, headers = svc.call(method, f"/api/result/{key}",
                                     headers={"if-none-match": condition.format(etag=etag)})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag and headers["last-modified"] == modified
    assert headers["cache-control"] == "private, max-age=300"
    assert "content-type" not in headers and "content-disposition" not in headers
    assert svc.app.store.calls == ["head"]  # the store's HEAD only: the object body is never read


def test_a_signed_url_revalidates_too(svc, stored):
    key, etag, _ = stored
    exp = int(svc.clock[0]) + 60
    query = f"exp={exp}&sig={result_signature(WEBHOOK_SECRET, key, exp)}"
    status, body, headers = svc.call("GET", f"/api/result/{key}", token=None, query=query,
                                     headers={"if-none-match": etag})
    assert (status, body, headers["etag"]) == (304, b"", etag)


@pytest.mark.parametrize("condition", ['"stale"', 'W/"stale", "other"', "{bare}", '"{bare}', "{etag}{etag}", ""])
def test_a_stale_or_malformed_if_none_match_gets_the_whole_object(svc, stored, condition):
    key, etag, _ = stored
    status, body, headers = svc.call("GET", f"/api/result/{key}",
                                     headers={"if-none-match": condition.format(etag=etag, bare=etag.strip('"'))})
    assert (status, body, headers["etag"]) == (200, DATA, etag)
    assert headers["content-length"] == str(len(DATA))


def test_revalidating_without_valid_auth_is_refused_before_the_store_is_asked(svc, stored):
    # A 304 would tell a stranger the object exists: auth first, as for a download.
    key, etag, _ = stored
    condition = {"if-none-match": etag}
    status, body, _ = svc.call("GET", f"/api/result/{key}", token=None, headers=condition)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert svc.call("GET", f"/api/result/{key}", token="wrong", headers=condition)[0] == 401
    assert svc.call("HEAD", f"/api/result/{key}", token=None, headers=condition)[0] == 401
    expired = int(svc.clock[0]) - 1
    query = f"exp={expired}&sig={result_signature(WEBHOOK_SECRET, key, expired)}"
    status, body, _ = svc.call("GET", f"/api/result/{key}", token=None, query=query, headers=condition)
    assert status == 403 and body["error"]["code"] == "url_expired_or_invalid"
    assert svc.app.store.calls == []


def test_a_range_request_gets_the_whole_object_as_a_200(svc, stored):
    # Ranges are not served (RFC 9110 14.2 lets a server ignore Range): the full 200, never a 206 or 416.
    key = stored[0]
    for ranges in ("bytes=0-3", "bytes=-10", "bytes=999999-"):
        status, body, headers = svc.call("GET", f"/api/result/{key}", headers={"range": ranges})
        assert (status, body) == (200, DATA), ranges
        assert "content-range" not in headers and headers.get("accept-ranges", "none") == "none"


def test_a_missing_result_is_404_even_for_if_none_match_star(svc, stored):
    missing = stored[0].replace("/0.png", "/9.png")
    status, body, _ = svc.call("GET", f"/api/result/{missing}", headers={"if-none-match": "*"})
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize(("name", "expected"), [
    ("0.png", 'inline; filename="0.png"'),
    ('a"b\\c.png', "inline; filename=\"a_b_c.png\"; filename*=UTF-8''a%22b%5Cc.png"),
    ("x\r\nSet-Cookie: y.png", "inline; filename=\"x__Set-Cookie: y.png\"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20y.png"),
    ("bild-\u00fc.webp", "inline; filename=\"bild-_.webp\"; filename*=UTF-8''bild-%C3%BC.webp"),
])
def test_content_disposition_quotes_any_name_into_one_safe_header_value(name, expected):
    assert content_disposition("inline", name) == expected


def test_a_store_tag_no_header_may_carry_gives_no_etag_and_never_matches():
    assert entity_tag("9dd4e461268c8034f5c8564e155c67a6-2") == '"9dd4e461268c8034f5c8564e155c67a6-2"'
    for bad in ('a"b', "a\r\nSet-Cookie: x", "a b", "\u00e9", None):
        assert entity_tag(bad) is None, bad
        assert not if_none_match_fails('"a b", "a\"b"', entity_tag(bad))
