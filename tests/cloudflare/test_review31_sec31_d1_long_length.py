"""The D1 stand-in's Content-Length check (digits only) still let through a length of more than 4300 digits, which
int() refuses (Python's limit on integer string conversion): the request ended in an empty connection and a ValueError
traceback on stderr, the very symptom the check was added to end. A length that long is a 413 (over MAX_BODY), or a
400: parse it bounded (strip leading zeros and compare digit counts, or refuse more than, say, 20 digits)."""

from __future__ import annotations

from test_review31_d1_standin_bad_length import _raw

from goldgate.cloudflare.d1_standin import D1StandIn

HUGE = "9" * 5000   # within http.server's 65536-byte header line, beyond int()'s 4300 digits


def test_an_api_call_with_a_5000_digit_length_gets_an_answer() -> None:
    with D1StandIn("tok", account_id="a") as standin:
        port = int(standin.origin.rsplit(":", 1)[1])
        answer = _raw(port, "POST", "/client/v4/accounts/a/d1/database", HUGE)
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.0 413 ")), answer[:200]
    assert b'"code": 7400' in answer


def test_an_upload_with_a_5000_digit_length_gets_an_answer_and_stores_nothing() -> None:
    with D1StandIn("tok", account_id="a") as standin:
        port = int(standin.origin.rsplit(":", 1)[1])
        answer = _raw(port, "PUT", "/_signed/imports/dump.sql", HUGE)
        assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
        assert not standin.backend.uploads
