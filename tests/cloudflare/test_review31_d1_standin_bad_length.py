"""The D1 stand-in answers a request whose Content-Length is no number of bytes with a 400, as an HTTP server does,
not an empty connection and a traceback on stderr (which a DR-drill test would read as Cloudflare hanging up)."""

from __future__ import annotations

import socket

import pytest

from goldgate.cloudflare.d1_standin import D1StandIn


def _raw(port: int, method: str, path: str, length: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer tok\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("length", ["abc", "-5", "12, 12", "１２"])
def test_an_api_call_with_no_usable_length_is_a_400_in_the_api_envelope(length: str) -> None:
    with D1StandIn("tok", account_id="a") as standin:
        port = int(standin.origin.rsplit(":", 1)[1])
        answer = _raw(port, "POST", "/client/v4/accounts/a/d1/database", length)
    assert answer.startswith(b"HTTP/1.0 400 "), answer[:200]
    assert b'"code": 7400' in answer and b"Content-Length is not a number of bytes" in answer


def test_an_upload_with_no_usable_length_is_a_400_and_nothing_is_stored() -> None:
    with D1StandIn("tok", account_id="a") as standin:
        port = int(standin.origin.rsplit(":", 1)[1])
        answer = _raw(port, "PUT", "/_signed/imports/dump.sql", "abc")
        assert answer.startswith(b"HTTP/1.0 400 ") and b"<Code>InvalidArgument</Code>" in answer, answer[:200]
        assert not standin.backend.uploads
