"""The framework-free HTTP values the core speaks: a Request in, a Response out, ApiError for refusals."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote

# A request path as a WHATWG URL parser leaves an http(s) URL's path: the Worker's runtime parses every request
# URL so before the app sees it, the local server does not. "\\" separates segments as "/" does, and "." and ".."
# segments, also written with %2e in any case, are resolved.
_UNRESOLVED = re.compile(r"\\|/(?:\.|%2e)", re.IGNORECASE)
_SINGLE_DOT = frozenset((".", "%2e"))
_DOUBLE_DOT = frozenset(("..", ".%2e", "%2e.", "%2e%2e"))
_SEPARATOR = re.compile(r"[/\\]")
# What that parser percent-encodes in a path (its path percent-encode set) and an HTTP/1.1 parser passes on raw.
# Left raw, a path was shorter locally than in the Worker, and the routes' length bounds answered it otherwise (a
# status id of 100 "<" was an unknown job locally, no route in the Worker). As node's parser (ada 2.9) does, "^"
# and "|" stay raw; controls, space and non-ASCII never reach the app raw (the HTTP parser refuses them).
_RAW_IN_PATH = re.compile(r'["<>`{}]')
_PERCENT_ENCODED = {c: f"%{ord(c):02X}" for c in '"<>`{}'}
# W3C Trace Context: version-traceid-parentid-flags, lowercase hex; a later version may append
# "-<more>", version 00 may not; version ff, an all-zero trace id or parent id are invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$")


def traceparent_trace_id(traceparent: str | None) -> str | None:
    """The trace id of a valid W3C `traceparent` field, else None. Only these 32 hex digits, never the field's
    own text, go into a job or a log line: the caller writes the field."""
    match = _TRACEPARENT.match((traceparent or "").strip(" \t"))
    if match is None:
        return None
    version, trace, parent, more = match.groups()
    if version == "ff" or (version == "00" and more is not None) or trace == "0" * 32 or parent == "0" * 16:
        return None
    return trace


def resolve_path(path: str) -> str:
    """`path` (raw, percent-encoded) with its dot segments resolved, "\\" read as "/" and the characters a URL
    path may not hold raw percent-encoded, as a WHATWG URL parser resolves it: the app sees one path for one
    request on every runtime. Other percent-encoding stays."""
    if _RAW_IN_PATH.search(path):
        path = _RAW_IN_PATH.sub(lambda raw: _PERCENT_ENCODED[raw.group()], path)
    if not path.startswith(("/", "\\")) or not _UNRESOLVED.search(path):
        return path
    pieces = _SEPARATOR.split(path)[1:]
    segments: list[str] = []
    for i, piece in enumerate(pieces, start=1):
        dots = piece.lower()
        if dots in _DOUBLE_DOT and segments:
            segments.pop()
        if dots in _DOUBLE_DOT or dots in _SINGLE_DOT:
            if i == len(pieces):  # a dot segment at the end leaves the path ending in "/"
                segments.append("")
        else:
            segments.append(piece)
    return "/" + "/".join(segments)


@dataclass(frozen=True)
class Request:
    """One HTTP request as the core sees it. `path` is the raw (still percent-encoded) path; the App reads it
    with its dot segments resolved (`resolve_path`)."""

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # lowercased names
    body: bytes = b""
    # Set by a runtime adapter that had App.count_upload count this request against its rate limit before it read
    # the body: the upload route does not count it again. Never from the wire.
    rate_counted: bool = False

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

    @cached_property
    def client_trace_id(self) -> str | None:
        """The trace id of the caller's valid W3C `traceparent`, or None (none sent, or an invalid one): a create's
        job takes it, and every line the request writes names it, a refused request's too."""
        return traceparent_trace_id(self.header("traceparent"))


@dataclass(frozen=True)
class Response:
    """`body` is bytes, or a stream the runtime adapter knows how to send (async iterator of bytes
    locally, an R2 body stream in the Worker)."""

    status: int
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    # A streamed body's logger, bound to what it is (the result's job): a body that breaks off mid-response is
    # logged on it by the runtime adapter, which knows nothing of jobs. None: the app's own logger.
    log: Any = None


_DECIMAL = re.compile(r"[0-9]+")


def declares_over(content_length: str | None, limit: int) -> bool:
    """Whether a Content-Length field declares more than `limit` bytes. Only ASCII digits are a length (str.isdigit
    takes '²', which int() refuses); a number too long for int() is over any limit."""
    if content_length is None or not _DECIMAL.fullmatch(content_length):
        return False
    digits = content_length.lstrip("0") or "0"   # 1*DIGIT: leading zeros are allowed and say nothing
    return len(digits) > 18 or int(digits) > limit


_HEADER_EXTRAS = {"allow": "allow", "www_authenticate": "www-authenticate", "retry_after": "retry-after",
                  "accept_encoding": "accept-encoding"}
RETRY_AFTER_S = "5"


class ApiError(Exception):
    """A refusal the client can act on; becomes `{"error": {"code", "message"}}` with `status`."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def to_response(self) -> Response:
        headers = {name: self.extra[key] for key, name in _HEADER_EXTRAS.items() if self.extra.get(key) is not None}
        if self.status == 503 and "retry_after" not in self.extra:  # trouble that passes: say when to retry
            headers["retry-after"] = RETRY_AFTER_S
        payload = {"code": self.code, "message": self.message}
        payload.update({k: v for k, v in self.extra.items() if k not in _HEADER_EXTRAS})
        return json_response(self.status, {"error": payload}, headers)


# One encoder for every answer: json.dumps with options builds a new one each call.
_ANSWER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = _ANSWER.encode(payload).encode("utf-8")
    # nosniff: error bodies quote what the caller sent; no browser may read one as HTML
    merged = {"content-type": "application/json", "cache-control": "no-store", "x-content-type-options": "nosniff"}
    merged.update(headers or {})
    return Response(status, body, merged)


# RFC 9110 8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, one list element of If-None-Match at a time.
_ETAGC = re.compile(r"[\x21\x23-\x7e]*")
_LIST_ENTITY_TAG = re.compile(r'[ \t]*(?:W/)?"([\x21\x23-\x7e\x80-\U0010ffff]*)"[ \t]*(?:,|\Z)')


def entity_tag(opaque: str | None) -> str | None:
    """The strong ETag field value for a store's tag (quoted), or None for a tag no header may carry."""
    if opaque is None or not _ETAGC.fullmatch(opaque):
        return None
    return f'"{opaque}"'


def if_none_match_fails(if_none_match: str, etag: str | None) -> bool:
    """True when If-None-Match is false for an existing object whose ETag field value is `etag`, i.e. the
    client's copy is current (RFC 9110 13.1.2): `*`, or a listed tag equal by weak comparison (W/ ignored).
    A malformed field is ignored (the condition holds): the client gets the whole object."""
    field = if_none_match.strip(" \t")
    if field == "*":
        return True
    tags: list[str] = []
    pos = 0
    while pos < len(field):
        if field[pos] in ", \t":  # empty list elements are allowed (RFC 9110 5.6.1)
            pos += 1
            continue
        match = _LIST_ENTITY_TAG.match(field, pos)
        if match is None:
            return False
        tags.append(f'"{match.group(1)}"')
        pos = match.end()
    return etag is not None and etag in tags


def content_disposition(disposition: str, filename: str) -> str:
    """`Content-Disposition: <disposition>` ("inline" or "attachment") naming `filename` (RFC 6266): a quoted
    ASCII fallback with quotes, backslashes, controls and non-ASCII replaced by "_", plus the exact name as
    RFC 8187 filename* when they differ. The value never holds a CR, LF or an unbalanced quote."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\]', "_", filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="", errors="replace")
    return value


class _NotJson(ValueError):
    """A value Python's json module accepts but JSON (RFC 8259) has no place for."""


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(f"{text[:32]} is too large for a JSON number")
    return value


class _DuplicateKey(ValueError):
    """An object names one key twice. JSON leaves what that means open (RFC 8259 4: names SHOULD be unique; I-JSON,
    RFC 7493, says MUST), and parsers part ways: Python's and JavaScript's keep the last value, others the first or
    refuse it. A proxy or WAF in front of the API may read the value this service would not."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


def _unique_object_without_lone_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """As _unique_object, each key's lone surrogates replaced first: "\\ud800" and "\\udc00" are one key then."""
    return _unique_object([(k if k.isascii() else _LONE_SURROGATE.sub("\ufffd", k), v) for k, v in pairs])


# One decoder for every request: json.loads with hooks would build a new one each call (on the webhook's hot path).
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_object)
# For a body that escapes a surrogate (rare): its keys are compared as they are kept, lone surrogates replaced.
_SURROGATE_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float,
                                      object_pairs_hook=_unique_object_without_lone_surrogates)

# A \uD800-\uDFFF escape; json.loads joins a proper pair into one character, so only lone halves stay.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(value: Any) -> Any:
    """`value` with each lone UTF-16 surrogate replaced by U+FFFD (as Go's and browsers' JSON decoders
    do): JSON can escape one, but UTF-8, SQLite and the log cannot hold it."""
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value


# The deepest nesting a JSON body may have. Past it the parsers of the two runtimes part ways: CPython's gives up near
# a depth of 1,000 (RecursionError), while Pyodide's (the Worker's) has no such bound and overflows the JS stack a few
# thousand levels down, a fatal error that kills the isolate (measured: 5,000 levels in Pyodide 0.28, 10,000 in
# 0.27). No request of this API nests more than a few levels.
MAX_JSON_DEPTH = 128
# A JSON string (its closing quote optional, so an unterminated one is one token to the end) or a bracket.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


def nested_deeper_than(text: bytes, limit: int) -> bool:
    """Whether the JSON `text` opens more than `limit` arrays or objects inside one another (brackets in strings
    do not count). Checked before parsing, so no runtime's parser ever recurses deeper than `limit`."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        first = token.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif first != 0x22:  # '"': a string
            depth -= 1
    return False


def _quoted(key: str) -> str:
    """`key` as a JSON string, cut to 64 characters: what a refusal names."""
    return json.dumps(key if len(key) <= 64 else key[:61] + "...", ensure_ascii=False)


def check_content_encoding(request: Request) -> None:
    """A 415 for a body sent with a content coding (RFC 9110 8.4, 15.5.16): the core decodes none. Read as it came,
    a gzipped body was a 400 "not UTF-8 text", which sends its client looking for a fault in its JSON, and a plain
    body labelled gzip was taken. `identity` is no coding."""
    coding = request.header("content-encoding")
    if coding is None or all(part.strip(" \t").lower() in ("", "identity") for part in coding.split(",")):
        return
    raise ApiError(415, "unsupported_content_encoding", f"request body has Content-Encoding {coding[:64]!r}, which "
                                                        "this API does not decode; send the JSON uncompressed, "
                                                        "without Content-Encoding", accept_encoding="identity")


def parse_json_body(request: Request) -> Any:
    """The body as JSON, or a 400 that says what is wrong with it (a 415 for a body sent with a content coding).
    NaN, Infinity and numbers beyond a double are refused (no JSON reader could take them back), and so is an
    object naming a key twice (parsers disagree on which value counts); lone surrogates become U+FFFD."""
    check_content_encoding(request)
    if not request.body:
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        text = request.body.decode("utf-8")
        if nested_deeper_than(request.body, MAX_JSON_DEPTH):
            raise RecursionError
        if _SURROGATE_ESCAPE.search(request.body):
            value = without_lone_surrogates(_SURROGATE_DECODER.decode(text))
        else:
            value = _DECODER.decode(text)
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "request body is not UTF-8 text; send a JSON object") from None
    except json.JSONDecodeError as exc:
        if request.body.startswith(b"\xef\xbb\xbf"):  # RFC 8259 8.1: JSON text MUST NOT begin with one
            raise ApiError(400, "invalid_json", "request body begins with a byte order mark (EF BB BF), which JSON "
                                                "may not; send it without one") from None
        raise ApiError(400, "invalid_json", f"request body is not valid JSON ({exc.msg} at "
                                            f"line {exc.lineno} column {exc.colno})") from None
    except _NotJson as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON ({exc})") from None
    except _DuplicateKey as exc:
        raise ApiError(400, "invalid_json", f"request body names the key {_quoted(exc.key)} twice in one object; "
                                            "send each key once") from None
    except ValueError:  # the only other one: int() refuses numbers over sys.get_int_max_str_digits()
        raise ApiError(400, "invalid_json", f"request body holds a number with more than "
                                            f"{sys.get_int_max_str_digits()} digits") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", f"request body is nested too deeply (over {MAX_JSON_DEPTH} levels); "
                                            "send a flat JSON object") from None
    return value
