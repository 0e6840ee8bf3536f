"""The framework-free HTTP values the core speaks: a Request in, a Response out, ApiError for refusals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Request:
    """One HTTP request as the core sees it. `path` is the raw (still percent-encoded) path."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercased names
    body: bytes = b""

    @cached_property
    def _params(self) -> dict[str, list[str]]:
        query = self.query_string
        if "%" in query or "+" in query or ";" in query:
            return parse_qs(query, keep_blank_values=True)
        # Nothing to decode (signed URLs are plain hex and ids): split it as parse_qs would.
        params: dict[str, list[str]] = {}
        for pair in query.split("&"):
            if pair:
                name, _, value = pair.partition("=")
                params.setdefault(name, []).append(value)
        return params

    def query(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self._params.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    """`body` is bytes, or a stream the runtime adapter knows how to send (async iterator of bytes
    locally, an R2 body stream in the Worker)."""

    status: int
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)


_HEADER_EXTRAS = {"allow": "allow", "www_authenticate": "www-authenticate"}


class ApiError(Exception):
    """A refusal the client can act on; becomes `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_response(self) -> Response:
        headers = {name: self.extra[key] for key, name in _HEADER_EXTRAS.items() if key in self.extra}
        payload = {"code": self.code, "message": self.message}
        payload.update({k: v for k, v in self.extra.items() if k not in _HEADER_EXTRAS})
        return json_response(self.status, {"error": payload}, headers)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    merged = {"content-type": "application/json", "cache-control": "no-store"}
    merged.update(headers or {})
    return Response(status, body, merged)


def parse_json_body(request: Request) -> Any:
    """The body as JSON, or a 400 that says what is wrong with it."""
    if not request.body:
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        return json.loads(request.body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "request body is not UTF-8 text; send a JSON object") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON ({exc.msg} at "
                                            f"line {exc.lineno} column {exc.colno})") from None
