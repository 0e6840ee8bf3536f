"""The local object store's door: a WSGI layer in front of moto's server that lets only the stack's own clients in.

moto's app, served as it is, took any web page open in a browser on this machine as a client: its CORS layer
reflected any Origin and allowed PUT, DELETE and Authorization in preflights (a page could list, read, overwrite
and delete the stack's results), and its `/moto-api/` control endpoints answered too (`POST /moto-api/reset`, sent
`no-cors` from any page, wiped the bucket until a restart: every result then 503 NoSuchBucket, every job failed).
The stack's clients are the service's and the workers' boto3 clients, signed with the stack's S3 access key, and
the host itself (its CreateBucket). None of them is a browser, names another host, or calls moto's control API.
So this refuses (403, an S3 error body, no CORS header) a request:
  - from a browser: one with an `Origin` header or a `Sec-Fetch-*` one (a page's `<img>` or `no-cors` GET sends
    no Origin but does send those), and any OPTIONS (a CORS preflight);
  - to moto's `/moto-api/` paths;
  - whose Host is not the store's own address, 127.0.0.1:<port> or localhost:<port> (a DNS-rebound name);
  - whose credential (SigV4: the Authorization header's `Credential=`, or a presigned URL's `X-Amz-Credential`;
    SigV2: `AWS <id>:` or `AWSAccessKeyId=`; an Authorization of any other kind) names another access key id than
    the stack's, or another service than S3 (moto's app serves every AWS service, picked by the credential's scope),
    or that names none (moto answers an anonymous ListObjects with every key).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

# `AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, SignedHeaders=..., Signature=...`
_AUTH_CREDENTIAL = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]*)\s*,")
_SCOPE = re.compile(r"([^/]+)/[^/]*/[^/]*/([^/]*)/aws4_request")
# SigV2 (S3 only: boto3's default for a presigned GET): `AWS <key id>:<signature>`, or `AWSAccessKeyId=` in the query
_AUTH_V2 = re.compile(r"AWS ([^:\s]+):")

StartResponse = Callable[..., Any]


class StoreGuard:
    """Wraps a WSGI app (moto's): requests that are none of the stack's own clients' get a 403 and never reach it.
    `port` is the store's own, set once its server is bound; `access_key_ids` the S3 key ids the stack hands its
    service and workers (None: any, for a store that is no stack's, as tests run it)."""

    def __init__(self, app: Callable[..., Any], access_key_ids: Iterable[str] | None = None) -> None:
        self.app = app
        self.port: int | None = None
        self.access_key_ids: set[str] | None = None if access_key_ids is None else set(access_key_ids)

    def allow_key(self, key_id: str) -> None:
        """A key id the stack hands a client from now on (a service or workers started after a key was written)."""
        if self.access_key_ids is not None:
            self.access_key_ids.add(key_id)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is not None:
            return _forbidden(start_response, refusal)
        return self.app(environ, start_response)

    def refusal(self, environ: dict[str, Any]) -> str | None:
        """Why the request is refused, or None for one of the stack's own clients'."""
        if "HTTP_ORIGIN" in environ or any(name.startswith("HTTP_SEC_FETCH_") for name in environ):
            return "the object store serves no browser page (the request came with an Origin or Sec-Fetch header)"
        if environ.get("REQUEST_METHOD", "").upper() == "OPTIONS":
            return "the object store answers no CORS preflight"
        path = environ.get("PATH_INFO", "") or ""
        if path.lstrip("/").lower().startswith("moto-api"):
            return "moto's control API is not served"
        host = (environ.get("HTTP_HOST") or "").lower()
        if self.port is None or host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return "the Host header is not the object store's own address"
        credentials = _credentials(environ)
        if not credentials and self.access_key_ids is not None:
            # moto answers an anonymous ListObjects with every key: each a job id and its results
            return "the request names no access key id"
        for key_id, service in credentials:
            if service != "s3":
                return "the request's credential is not for S3"
            if self.access_key_ids is not None and key_id not in self.access_key_ids:
                return "the request's access key id is not the stack's"
        return None


def _credentials(environ: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """Each (key id, service) the request names; (None, None) for one that cannot be read (refused as another's)."""
    found: list[tuple[str | None, str | None]] = []
    auth = environ.get("HTTP_AUTHORIZATION")
    if auth is not None:
        match = _AUTH_CREDENTIAL.match(auth.strip())
        v2 = _AUTH_V2.match(auth.strip())
        found.append(_scope(match.group(1)) if match else (v2.group(1), "s3") if v2 else (None, None))
    for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        lowered = name.lower()
        if lowered == "x-amz-credential":
            found.append(_scope(value))
        elif lowered == "awsaccesskeyid":
            found.append((value, "s3"))
    return found


def _scope(credential: str) -> tuple[str | None, str | None]:
    match = _SCOPE.fullmatch(credential)
    return (match.group(1), match.group(2).lower()) if match else (None, None)


def _forbidden(start_response: StartResponse, message: str) -> list[bytes]:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>").encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])
    return [body]
