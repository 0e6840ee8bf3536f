"""The object store's door refuses each kind of request it names on its own, not only one that also lacks a key.

Session 28 mutation audit: every request the stack tests sent to the store's door named no access key id, so the
door's "no credential" refusal answered them all, and dropping its Origin, Sec-Fetch, OPTIONS, moto-api, Host or
service checks (or its reading of a presigned URL's X-Amz-Credential, or `allow_key`) changed no test's outcome. Here
each request carries the stack's own key, so only the check under test can refuse it."""

from __future__ import annotations

from typing import Any

import pytest

from goldgate.local.store_guard import StoreGuard

KEY = "0123456789abcdef0123"
PORT = 40123
OWN_HOST = f"127.0.0.1:{PORT}"


def _sigv4(key_id: str, service: str = "s3") -> str:
    return (f"AWS4-HMAC-SHA256 Credential={key_id}/20261201/us-east-1/{service}/aws4_request, SignedHeaders=host, "
            "Signature=00")


class _Moto:
    """Stands in for moto's app: records each request that got through the door."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.reached.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/xml")])
        return [b"<ListBucketResult/>"]


def _door(keys: list[str] | None = None) -> tuple[StoreGuard, _Moto]:
    moto = _Moto()
    guard = StoreGuard(moto, [KEY] if keys is None else keys)
    guard.port = PORT
    return guard, moto


def _send(guard: StoreGuard, method: str = "GET", path: str = "/results", query: str = "list-type=2",
          **headers: str) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                               "HTTP_HOST": OWN_HOST, "HTTP_AUTHORIZATION": _sigv4(KEY)}
    for name, value in headers.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, {k.lower(): v for k, v in response_headers}

    body = b"".join(guard(environ, start_response))
    return answer["status"], answer["headers"], body


def test_the_stacks_own_signed_request_reaches_the_store_on_either_local_name() -> None:
    guard, moto = _door()
    for host in (OWN_HOST, f"localhost:{PORT}", f"LOCALHOST:{PORT}"):
        status, _, _ = _send(guard, HTTP_HOST=host)
        assert status == "200 OK", host
    assert moto.reached == ["/results"] * 3


@pytest.mark.parametrize("marker", [
    {"HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_SEC_FETCH_SITE": "cross-site"},                 # a page's <img> or no-cors GET: no Origin
    {"HTTP_SEC_FETCH_MODE": "no-cors", "HTTP_SEC_FETCH_DEST": "image"},
])
def test_a_browsers_request_is_refused_even_naming_the_stacks_key(marker: dict[str, str]) -> None:
    guard, moto = _door()
    status, headers, body = _send(guard, **marker)
    assert status.startswith("403"), marker
    assert b"AccessDenied" in body and "access-control-allow-origin" not in headers
    assert moto.reached == []


def test_any_preflight_is_refused_even_without_an_origin() -> None:
    guard, moto = _door()
    status, _, _ = _send(guard, method="OPTIONS", path="/results/results/j/0.png", query="")
    assert status.startswith("403") and moto.reached == []


@pytest.mark.parametrize("path", ["/moto-api/reset", "moto-api/data.json", "/MOTO-API/reset"])
def test_motos_control_api_is_refused_even_to_the_stacks_key(path: str) -> None:
    guard, moto = _door()
    status, _, body = _send(guard, method="POST", path=path, query="")
    assert status.startswith("403") and b"control API" in body
    assert moto.reached == []


@pytest.mark.parametrize("host", [f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", "127.0.0.1", None])
def test_a_host_header_not_the_stores_own_address_is_refused_even_with_the_stacks_key(host: str | None) -> None:
    guard, moto = _door()
    status, _, _ = _send(guard, HTTP_HOST=host)
    assert status.startswith("403") and moto.reached == []


def test_a_store_not_yet_bound_to_its_port_lets_nothing_in() -> None:
    guard, moto = _door()
    guard.port = None
    status, _, _ = _send(guard, HTTP_HOST="127.0.0.1:None")
    assert status.startswith("403") and moto.reached == []


@pytest.mark.parametrize("service", ["sts", "iam", "dynamodb"])
def test_the_stacks_key_signed_for_another_aws_service_is_refused(service: str) -> None:
    # moto's app serves every AWS service, picked by the credential's scope
    guard, moto = _door()
    status, _, body = _send(guard, method="POST", path="/", query="", HTTP_AUTHORIZATION=_sigv4(KEY, service))
    assert status.startswith("403") and b"not for S3" in body
    assert moto.reached == []


def test_a_presigned_urls_credential_is_read_from_its_query() -> None:
    guard, moto = _door()
    own = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={KEY}%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    status, _, _ = _send(guard, query=own, HTTP_AUTHORIZATION=None)
    assert status == "200 OK"
    other = "X-Amz-Credential=AKIAOTHER%2F20261201%2Fus-east-1%2Fs3%2Faws4_request"
    status, _, body = _send(guard, query=other)  # beside the stack's own Authorization: still another's key
    assert status.startswith("403") and b"not the stack's" in body
    status, _, _ = _send(guard, query="AWSAccessKeyId=AKIAOTHER&Signature=00&Expires=1", HTTP_AUTHORIZATION=None)
    assert status.startswith("403")
    assert moto.reached == ["/results"]


def test_an_authorization_of_another_kind_is_refused_beside_the_stacks_presigned_key() -> None:
    guard, moto = _door()
    status, _, _ = _send(guard, query=f"AWSAccessKeyId={KEY}&Signature=00&Expires=1",
                         HTTP_AUTHORIZATION="Bearer not-an-s3-credential")
    assert status.startswith("403") and moto.reached == []


def test_a_key_allowed_after_start_gets_in_and_a_store_of_no_stack_stays_open_to_any() -> None:
    guard, _ = _door()
    rotated = "fedcba9876543210fedc"
    assert _send(guard, HTTP_AUTHORIZATION=_sigv4(rotated))[0].startswith("403")
    guard.allow_key(rotated)                  # a service or workers started after the key file was rewritten
    assert _send(guard, HTTP_AUTHORIZATION=_sigv4(rotated))[0] == "200 OK"
    assert _send(guard)[0] == "200 OK"        # and the key it had still works
    assert _send(guard, HTTP_AUTHORIZATION=_sigv4("AKIAOTHER"))[0].startswith("403")

    open_guard = StoreGuard(_Moto())
    open_guard.port = PORT
    open_guard.allow_key(rotated)             # no list to add to: any key stays welcome
    assert _send(open_guard, HTTP_AUTHORIZATION=_sigv4("AKIAANYONE"))[0] == "200 OK"
