"""A generative sweep over the whole HTTP surface of the core App: every route of docs/openapi.json (and paths and
methods that are none), with hostile path segments, query strings, headers and bodies, with and without the API
token and a valid webhook or result-URL signature (so the webhook's and the result route's parsers are reached).

Every answer: never a 500, and no 5xx at all (the sweep causes no store or RunPod outage); an error is the JSON
`{"error": {"code", "message"}}` with a code openapi.json lists for that operation and status (404 `not_found` or
405 `method_not_allowed` where no route matches); a refused request writes nothing; each request logs exactly
one line, on the schema and without a secret; and it is answered within a bound (no hang).
Beside the generated requests, a table: each value of each body-taking route's good body written as each of
RAW_VALUES (NaN, 1e400, 4,301 digits, lone surrogates, nesting past the limit, each JSON type, ...), and each body
damaged whole (BOM, UTF-16, Latin-1, cut short, trailing data, duplicate keys, 100,000 brackets, ...).
The strategies are shared with test_review24_httpfuzz_edge.py, which sends a smaller sweep through the real server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_testkit import API_TOKEN, ROOT, WEBHOOK_SECRET, check_log_lines

from service.app import ROUTES
from service.http import Request, resolve_path
from service.signing import result_signature, webhook_signature
from service.transitions import RUNPOD_STATUSES

DOC = json.loads((ROOT / "docs" / "openapi.json").read_text())
NOW_S = 1_800_000_000  # the svc harness's clock
UNKNOWN_JOB = "0123456789abcdef" * 2  # a job id of the right form that no job has
ANSWER_BOUND_S = 30  # a hang, not a slow answer: the slowest route makes two loopback calls


# --- the contract -----------------------------------------------------------------------------------------------

def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _code_enums(schema: Any) -> list[list[str]]:
    if not isinstance(schema, dict):
        return []
    found = _code_enums(_deref(schema)) if "$ref" in schema else []
    for part in schema.get("allOf", []):
        found += _code_enums(part)
    code = schema.get("properties", {}).get("error", {}).get("properties", {}).get("code", {})
    return found + ([code["enum"]] if "enum" in code else [])


def documented(verb: str, template: str) -> dict[int, set[str]]:
    """The statuses openapi.json documents for an operation, each with its error codes (GET's for HEAD)."""
    answers: dict[int, set[str]] = {}
    for status, response in DOC["paths"][template][verb]["responses"].items():
        schema = _deref(response).get("content", {}).get("application/json", {}).get("schema")
        answers[int(status)] = {code for enum in _code_enums(schema) for code in enum}
    if verb == "head":
        get = documented("get", template)
        answers = {status: get.get(status, set()) for status in answers}
    return answers


def _template(pattern: re.Pattern[str]) -> str:
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.pattern[1:-1])


# The router's routes as openapi.json names them; the contract test holds the two to each other.
TEMPLATES = [(method, pattern, _template(pattern)) for method, pattern, _ in ROUTES]
assert all(t in DOC["paths"] for _, _, t in TEMPLATES), "openapi.json and service.app.ROUTES disagree"
# What any path answers before or without a route: its body over the limit, no route, or not this method.
NO_ROUTE = {404: {"not_found"}, 405: {"method_not_allowed"}, 413: {"body_too_large"}}


def expected_answers(method: str, raw_path: str) -> tuple[str | None, dict[int, set[str]]]:
    """The operation (template) a request reaches as the App routes it, and what it may answer."""
    path = resolve_path(raw_path)
    wanted = "GET" if method == "HEAD" else method
    for route_method, pattern, template in TEMPLATES:
        if pattern.match(path) and route_method == wanted:
            return template, documented(method.lower(), template)
    return None, NO_ROUTE


def check_answer(method: str, raw_path: str, status: int, body: bytes, headers: dict[str, str],
                 no_route: dict[int, set[str]] = NO_ROUTE) -> None:
    """The properties every answer has (the caller adds what it knows of writes and logs); `no_route`: what a
    path no route matches may answer."""
    template, allowed = expected_answers(method, raw_path)
    allowed = allowed if template is not None else no_route
    where = f"{method} {raw_path[:200]!r} ({template or 'no route'}) answered {status}: {body[:300]!r}"
    assert status != 500, where
    assert status < 500, f"a 5xx the sweep did not cause: {where}"
    if status < 400:
        assert status in allowed or 200 <= status < 300, where
        return
    assert status in allowed, f"an undocumented status: {where}"
    if method == "HEAD":
        assert body == b"", where
        return
    assert headers.get("content-type") == "application/json", where
    error = json.loads(body)["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"], where
    assert error["code"] in allowed[status], f"code {error['code']!r} is not documented for {status}: {where}"


# --- the requests -----------------------------------------------------------------------------------------------

def usually(draw: st.DrawFn, one_in: int) -> bool:
    """True but one time in `one_in`. The usual case is hypothesis's simplest draw (0), which it draws more often
    than the rest (its first examples, and what it shrinks toward): the sweep then reaches past each check."""
    return draw(st.integers(0, one_in - 1)) != one_in - 1


def rarely(draw: st.DrawFn, one_in: int) -> bool:
    return not usually(draw, one_in)


# Filled in by `seed` (the edge sweep: `Edge.seed`): the seeded jobs' ids and RunPod ids, a stored result's key.
WORLD: dict[str, Any] = {}

_HOSTILE_SEGMENTS = ["", ".", "..", "%2e%2e", "%2E.", "%00", "\x00", "%", "%zz", "%ff", "%2f", "%2F..%2F", "\\",
                     "a b", "%20", ";x", "?", "#", "é", "%C3%A9", "\u2028", "<", "`", "{", "|", "~",
                     "0" * 32, "F" * 32, "a" * 33, "a" * 201, "x" * 1200, "results", "api", "status", "..%5c"]
segments = st.one_of(st.sampled_from(_HOSTILE_SEGMENTS), st.text(max_size=12),
                     st.text(alphabet="0123456789abcdef", min_size=30, max_size=34))


@st.composite
def job_ids(draw: st.DrawFn) -> str:
    return draw(st.one_of(st.sampled_from(WORLD["jobs"]), st.just("0" * 32), segments,
                          st.sampled_from(WORLD["jobs"]).map(str.upper),
                          st.sampled_from(WORLD["jobs"]).map(lambda j: j + draw(st.sampled_from(
                              ["%0A", "\n", "/", "%2F", "/..", "/x", "%00", " "])))))


@st.composite
def result_keys(draw: st.DrawFn) -> str:
    job = draw(st.sampled_from(WORLD["jobs"]))
    name = draw(st.sampled_from(["0.png", "outcome.json", "..", ".hidden", "a" * 130, "0.png%0A", "0%2epng",
                                 "%2e%2e/%2e%2e/x", "0.png/..", "0.png%00", "x.svg"]))
    return draw(st.sampled_from([WORLD["result_key"], f"results/{job}/{name}", f"results%2F{job}%2F{name}",
                                 f"results/{job}//{name}", f"/results/{job}/{name}", f"results/../{name}",
                                 f"results/{job}/{name}".replace("/", "\\")]))


# Where the sweep sends requests: each route (a parameter's route with its parameter to fill), and anywhere.
PLACES = ("/healthz", "/api/workflows", "/api/queue/create", "/api/runpod/webhook", "/api/metrics", "/api/status/",
          "/api/admin/recover/", "/api/cancel/", "/api/result/", "anywhere")


@st.composite
def paths(draw: st.DrawFn, place: str) -> str:
    """A path to `place`, its parameter hostile at times; anywhere: a path of hostile segments."""
    if place == "anywhere":
        return "/" + "/".join(draw(st.lists(segments, min_size=0, max_size=5)))
    if place == "/api/result/":
        return place + draw(result_keys())
    if place.endswith("/"):
        return place + (draw(st.sampled_from(WORLD["jobs"])) if usually(draw, 2) else draw(job_ids()))
    return place


methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", "post", "FOO"])


def route_method(path: str) -> str | None:
    """The method the route of `path` takes (GET or POST), or None when no route matches it."""
    path = resolve_path(path)
    return next((method for method, pattern, _ in TEMPLATES if pattern.match(path)), None)

_QUERY_NAMES = ["job", "sig", "exp", "since", "SIG", "a", "", "job[]", "sig%00"]
_QUERY_VALUES = ["", "1", "%", "%zz", "%ff", "%C3", "+", "a+b", "x y", ";", "%3B", "0" * 64, "g" * 64, "-1",
                 "9" * 40, "²", "1e3", "2026-01-31T00:00:00Z", "2026-13-45", "9999-12-31T23:59:59-01:00",
                 "0001-01-01T00:00:00+01:00", "2026-01-31T00:00:00 01:00", "\x00", "é", "%0A"]


@st.composite
def queries(draw: st.DrawFn, path: str) -> str:
    signed: list[str] = []
    if "webhook" in path and usually(draw, 4):  # a signed webhook URL, so the webhook's parser is reached
        job = draw(st.sampled_from([*WORLD["jobs"], UNKNOWN_JOB]))
        sig = webhook_signature(WEBHOOK_SECRET, job)
        signed = [f"job={job}", f"sig={draw(st.sampled_from([sig, sig, sig.upper(), sig[:-1]]))}"]
    if "/api/result/" in path and usually(draw, 2):
        exp = NOW_S + draw(st.sampled_from([60, 60, -1, 10**8]))
        signed = [f"exp={exp}", f"sig={result_signature(WEBHOOK_SECRET, WORLD['result_key'], exp)}"]
    pairs: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(st.sampled_from(_QUERY_NAMES), st.text(max_size=6)))
        value = draw(st.one_of(st.sampled_from(_QUERY_VALUES), st.text(max_size=10)))
        pairs.append(draw(st.sampled_from([f"{name}={value}", name, f"{name}=={value}", f"={value}"])))
    # The signature first as a rule (the first value of a name counts), anywhere at times.
    pairs = signed + pairs if usually(draw, 4) else draw(st.permutations(signed + pairs))
    return draw(st.sampled_from(["&", "&", "&", "&&", ";"])).join(pairs)


# No lone surrogate in a header, path or query: no runtime hands one to the core (uvicorn reads the target as
# Latin-1, workerd header bytes as UTF-8 with U+FFFD), and the edge sweep sends bytes. One in the token is a test of
# its own below.
_AUTH = [f"Bearer {API_TOKEN}", f"bearer {API_TOKEN}", f"BEARER  {API_TOKEN} ", f"Bearer {API_TOKEN}x",
         f"Bearer {API_TOKEN[:-1]}", API_TOKEN, "Bearer", "Bearer ", "", "Basic dXNlcjpwYXNz", "Bearer é",
         f"Bearer {API_TOKEN}\x00", f"Bearer {API_TOKEN}, Bearer x", "Bearer " + "a" * 5000]
_HEADERS = {
    "authorization": st.sampled_from(_AUTH),
    "content-type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1",
                                     "multipart/form-data; boundary=x", "", "é"]),
    "idempotency-key": st.one_of(st.sampled_from(['"k-1"', "k-1", '"', '""', "a" * 256, "a b", "\x00", "é", ""]),
                                 st.text(max_size=8)),
    "traceparent": st.sampled_from(["00-" + "a" * 32 + "-" + "b" * 16 + "-01", "ff-" + "a" * 32 + "-" + "b" * 16
                                    + "-01", "00-" + "0" * 32 + "-" + "b" * 16 + "-01", "garbage", "", "é"]),
    "if-none-match": st.sampled_from(["*", '"x"', 'W/"x"', '"', ",,", 'W/', '"a", W/"b"', "é" * 3]),
    "content-length": st.sampled_from(["0", "5", "00000000000000000000000000000001", "9" * 30, "-1", "abc",
                                       "²", " 5", "5, 5"]),
    "x-other": st.text(max_size=10),
}


@st.composite
def header_sets(draw: st.DrawFn) -> dict[str, str]:
    """Some of the headers above, any values; the API token as a rule, so that most requests reach their route."""
    names = draw(st.sets(st.sampled_from(sorted(set(_HEADERS) - {"authorization"})), max_size=3))
    headers = {name: draw(_HEADERS[name]) for name in sorted(names)}
    auth = draw(st.sampled_from(["valid", "valid", "valid", "variant", "none"]))
    if auth != "none":
        headers["authorization"] = f"Bearer {API_TOKEN}" if auth == "valid" else draw(_HEADERS["authorization"])
    return headers


_leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(["", "sdxl-txt2img", "flux-schnell", "COMPLETED", "FAILED", "IN_QUEUE",
                                     "results/", "\ud800"]))
json_values = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=8)


def _mixed(draw: st.DrawFn, good: dict[str, Any], junk_keys: list[str]) -> dict[str, Any]:
    """`good` as it is, or with some keys dropped, some values replaced by any JSON, and an unknown key added."""
    if usually(draw, 2):
        return good
    body = {k: (draw(json_values) if rarely(draw, 4) else v) for k, v in good.items()
            if usually(draw, 6)}
    if rarely(draw, 4):
        body[draw(st.sampled_from(junk_keys))] = draw(json_values)
    return body


# A value at the wrong side of a parameter's bounds, or of the wrong type, for one input at a time.
_BAD_INPUTS = ["", "x" * 2001, 2049, 255, 9, 0, 1e300, -0.0, 30.5, True, "512", 2**64, None, [], {}, "EULER"]


@st.composite
def create_bodies(draw: st.DrawFn) -> Any:
    """A create's body: valid for one of the fixture workflows, then perhaps one input bad, keys dropped or added."""
    workflow = draw(st.sampled_from(["sdxl-txt2img", "flux-schnell"]))
    inputs: dict[str, Any] = {"prompt": draw(st.sampled_from(["a lighthouse", "é\u2028 at dusk", "x" * 500]))}
    optional = ({"width": draw(st.sampled_from([256, 2048, 1024.0])), "cfg": draw(st.sampled_from([0, 7.5, 30])),
                 "tiling": draw(st.booleans()), "sampler": draw(st.sampled_from(["euler", "dpmpp_2m"]))}
                if workflow == "sdxl-txt2img" else {"steps": draw(st.sampled_from([1, 8, 4.0]))})
    inputs.update((k, v) for k, v in optional.items() if draw(st.booleans()))
    if rarely(draw, 2):
        inputs[draw(st.sampled_from(sorted(inputs) + ["steps", "width"]))] = draw(st.sampled_from(_BAD_INPUTS))
    inputs = _mixed(draw, inputs, ["seed", "", "prompt\x00", "__proto__"])
    return _mixed(draw, {"workflow_id": workflow if usually(draw, 4) else draw(st.sampled_from(["nope", ""])),
                         "inputs": inputs}, ["extra", "workflow", ""])


@st.composite
def webhook_bodies(draw: st.DrawFn, job: str | None = None) -> Any:
    """RunPod's delivery for `job` (any of the seeded ones by default), each field right as a rule."""
    job = job or draw(st.sampled_from(WORLD["jobs"]))
    image = _mixed(draw, {"key": draw(st.sampled_from([WORLD["result_key"], f"results/{job}/0.png",
                                                       f"results/{job}/../x", "results/x"])),
                          "content_type": draw(st.sampled_from(["image/png", "text/html", "IMAGE/PNG; q=1"])),
                          "bytes": draw(st.sampled_from([WORLD["result_bytes"], 0, -1, 2**64, 1.5])),
                          "sha256": "0" * 64, "width": draw(st.sampled_from([8, 0, 2**40, "8"])), "height": 8},
                   ["extra"])
    output = _mixed(draw, {"images": draw(st.sampled_from([[image], [image] * 3, [], [image, "x"]])),
                           "timings": {"total_ms": 5}, "workflow_version": "sdxl-txt2img@1.0.0",
                           "worker_image_tag": "local/worker@sha256:" + "b" * 64}, ["gpu_type", "x"])
    rid = WORLD["runpod_ids"].get(job, "other-u1")
    return _mixed(draw, {"id": draw(st.sampled_from([rid, rid, rid, "other-u1", "", "x" * 129])),
                         "status": draw(st.sampled_from(list(RUNPOD_STATUSES) + ["completed"])),
                         "delayTime": draw(st.sampled_from([5, -5, "12", "1e400", 10**13, None, 1.5])),
                         "executionTime": draw(st.sampled_from([5, "nan", "   7  ", True, {}])),
                         "output": output,
                         "error": draw(st.sampled_from(["boom", None, {"message": "x"}, "e" * 5000]))},
                  ["retries", "webhook"])


@st.composite
def recover_bodies(draw: st.DrawFn) -> Any:
    return _mixed(draw, {"runpod_job_id": draw(st.one_of(
        st.sampled_from([WORLD["runpod_id"], "other-u1", "", "-x", "a/b", "a" * 129, "../status"]), json_values))},
                  ["job_id"])


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


# JSON text (or text that is no JSON) put in place of one value of a body: numbers no double holds, NaN and
# infinities in text, more digits than Python's int() takes, lone surrogates, nesting past the depth limit, and
# each JSON type.
RAW_VALUES = (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400", b"-0", b"1E+2", b"9" * 4300,
              b"9" * 4301, b"-" + b"9" * 20_000, b"123456789012345678901234567890", b"0.1e1", b"true", b"null",
              b'"\\ud800"', b'"\\udc00\\ud800x"', b'"\\u0000"', b'""', b'"' + b"x" * 70_000 + b'"', b"{}", b"[]",
              b"[" * 129 + b"]" * 129, b'{"a":' * 127 + b"1" + b"}" * 127, b"undefined", b"'x'", b"0x10", b"01")
# Damage to a body's text as a whole.
WHOLE_DAMAGES = {
    "bom": lambda text: b"\xef\xbb\xbf" + text,
    "utf16": lambda text: text.decode().encode("utf-16"),
    "latin1": lambda text: text.replace(b'"', b'"\xe9', 1) if b'"' in text else b"\xff" + text,
    "truncated": lambda text: text[: len(text) // 2],
    "trailing comma": lambda text: text + b",",
    "trailing brace": lambda text: text + b"}",
    "second value": lambda text: text + b" {}",
    "trailing nul": lambda text: text + b"\x00",
    "whitespace": lambda text: b" \t\r\n" + text + b"\n",
    "duplicate keys": lambda text: b'{"workflow_id": null, "id": null, "runpod_job_id": null, ' + text[1:]
    if text.startswith(b"{") and len(text) > 2 else text,
    "empty": lambda text: b"",
    "nul": lambda text: b"\x00" * 4,
    "deep": lambda text: b"[" * 100_000 + b"]" * 100_000,
    "deep at the limit": lambda text: b"[" * 128 + b"]" * 128,
    "brackets in strings": lambda text: _dumps({"workflow_id": "[" * 5000, "inputs": {"prompt": "{" * 3000}}),
    "array root": lambda text: b"[" + text + b"]",
    "string root": lambda text: _dumps(text.decode()),
}


def value_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path (keys and indexes) of every value inside `value`, containers too."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    paths: list[tuple[Any, ...]] = []
    for key, inner in items:
        paths += [(*prefix, key), *value_paths(inner, (*prefix, key))]
    return paths


def with_raw(value: Any, path: tuple[Any, ...], raw: bytes) -> bytes:
    """`value` as JSON text with the value at `path` written as `raw`."""
    copy = json.loads(json.dumps(value))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = "@@raw@@"
    return _dumps(copy).replace(b'"@@raw@@"', raw, 1)


@st.composite
def bodies(draw: st.DrawFn, shaped: Any = None) -> bytes:
    """A body: JSON of a route's shape (`shaped`) or of any shape, then perhaps one value of it written as
    RAW_VALUES has them, or the whole damaged."""
    value = draw(st.one_of(create_bodies(), webhook_bodies(), recover_bodies(), json_values) if shaped is None
                 else st.one_of(shaped, shaped, shaped, json_values))
    text = _dumps(value)
    if usually(draw, 3):
        return text
    paths = value_paths(value)
    if paths and draw(st.booleans()):
        return with_raw(value, draw(st.sampled_from(paths)), draw(st.sampled_from(RAW_VALUES)))
    return WHOLE_DAMAGES[draw(st.sampled_from(sorted(WHOLE_DAMAGES)))](text)


@st.composite
def requests(draw: st.DrawFn, place: str) -> Request:
    """Any request to `place` (PLACES): the route's own method as a rule."""
    path = draw(paths(place))
    usual = route_method(path)
    method = usual if usual is not None and usually(draw, 4) else draw(methods)
    if method == "GET" and rarely(draw, 4):
        method = "HEAD"
    query = draw(queries(path))
    headers = draw(header_sets())
    body = draw(bodies()) if usually(draw, 6) else b""
    return Request(method, path, query, headers, body)


BODY_ROUTES = ("create", "webhook", "recover", "cancel")


@st.composite
def body_requests(draw: st.DrawFn, route: str) -> Request:
    """A request to `route` (BODY_ROUTES) that gets past its credentials to the body's parser, as a rule."""
    headers = draw(header_sets())
    if route == "create":
        path, query, shaped = "/api/queue/create", "", create_bodies()
    elif route == "webhook":
        job = draw(st.sampled_from([*WORLD["jobs"], UNKNOWN_JOB]))
        path, query, shaped = "/api/runpod/webhook", f"job={job}&sig={webhook_signature(WEBHOOK_SECRET, job)}", \
            webhook_bodies(job)
        if usually(draw, 4):
            headers.pop("authorization", None)  # RunPod sends none
    else:
        job = draw(st.sampled_from(WORLD["jobs"])) if usually(draw, 2) else draw(job_ids())
        path, query, shaped = f"/api/{'admin/recover' if route == 'recover' else 'cancel'}/{job}", "", recover_bodies()
    body = draw(bodies(shaped)) if usually(draw, 8) else b""
    return Request("POST", path, query, headers, body)


def good_body_requests(route: str) -> tuple[Request, Any]:
    """A request to `route` (BODY_ROUTES) that its route takes, and its body's JSON value."""
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    queued, _, failed = WORLD["jobs"]
    if route == "create":
        value: Any = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse", "width": 512, "cfg": 7.5,
                                                                 "tiling": False, "sampler": "euler"}}
        return Request("POST", "/api/queue/create", "", auth, b""), value
    if route == "webhook":  # a COMPLETED after a FAILED is applied: its images are read, not only its status
        value = {"id": WORLD["runpod_ids"][failed], "status": "COMPLETED", "delayTime": 5, "executionTime": 7,
                 "output": {"images": [{"key": f"results/{failed}/0.png", "content_type": "image/png", "bytes": 9,
                                        "sha256": "0" * 64, "width": 8, "height": 8}],
                            "timings": {"total_ms": 7}, "workflow_version": "sdxl-txt2img@1.0.0"}, "error": None}
        query = f"job={failed}&sig={webhook_signature(WEBHOOK_SECRET, failed)}"
        return Request("POST", "/api/runpod/webhook", query, {}, b""), value
    value = {"runpod_job_id": WORLD["runpod_ids"][queued]}
    return Request("POST", f"/api/{'admin/recover' if route == 'recover' else 'cancel'}/{queued}", "", auth, b""), \
        value


def damaged_requests(route: str) -> list[Request]:
    """`route`'s good request with each value of its body written as each of RAW_VALUES, and with its whole body
    damaged each way WHOLE_DAMAGES has."""
    request, value = good_body_requests(route)
    text = _dumps(value)
    bodies = [with_raw(value, path, raw) for path in value_paths(value) for raw in RAW_VALUES]
    bodies += [damage(text) for damage in WHOLE_DAMAGES.values()]
    return [dataclasses.replace(request, body=body) for body in bodies]


# --- the sweep --------------------------------------------------------------------------------------------------

_WRITTEN = ("jobs", "webhook_deliveries", "job_metrics", "idempotency_keys", "retention_cursor", "daily_spend")


def written_state(harness: Any) -> dict[str, Any]:
    """Every row the service writes, in order: a refused request leaves it as it was."""
    return {table: harness.rows(f"SELECT * FROM {table} ORDER BY rowid") for table in _WRITTEN}


def seed(harness: Any) -> None:
    """Jobs in each kind of state a route may meet: queued at RunPod, completed with a stored result, failed."""
    queued, done, failed = (harness.create(prompt)["job_id"] for prompt in ("queued", "done", "failed"))
    image = harness.put_result(done)
    assert harness.deliver(done, harness.completed(done, [image]))[0] == 200
    assert harness.deliver(failed, {"id": harness.runpod_id(failed), "status": "FAILED", "error": "oom"})[0] == 200
    WORLD.update(jobs=[queued, done, failed], result_key=image["key"], result_bytes=image["bytes"],
                 runpod_id=harness.runpod_id(queued), runpod_ids={j: harness.runpod_id(j) for j in (queued, done, failed)})


def answer(harness: Any, request: Request) -> tuple[int, bytes, dict[str, str]]:
    async def whole() -> tuple[int, bytes, dict[str, str]]:
        response = await harness.app.handle(request)
        body = response.body
        if not isinstance(body, (bytes, bytearray)):
            body = b"".join([chunk async for chunk in body])
        return response.status, bytes(body), dict(response.headers)
    return harness.run(asyncio.wait_for(whole(), ANSWER_BOUND_S))


def sweep(harness: Any, log_lines: list[str], request: Request) -> None:
    before, lines = written_state(harness), len(log_lines)
    status, body, headers = answer(harness, request)
    check_answer(request.method, request.path, status, body, headers)
    if status >= 400:
        assert written_state(harness) == before, f"a refused request wrote: {request}"
    new = log_lines[lines:]
    check_log_lines(new)
    assert len(new) == 1, f"{len(new)} log lines for one request: {new}"


_SWEEP = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                         HealthCheck.data_too_large])
_BODY_SWEEP = settings(_SWEEP, max_examples=80)


def seeded(harness: Any) -> Any:
    if WORLD.get("harness") is not harness:
        seed(harness)
        WORLD["harness"] = harness
    return harness


@pytest.mark.parametrize("place", PLACES)
@_SWEEP
@given(data=st.data())
def test_any_request_to_any_path_is_answered_with_a_documented_status_and_json_error(svc, log_lines, place, data):
    sweep(seeded(svc), log_lines, data.draw(requests(place)))


@pytest.mark.parametrize("route", BODY_ROUTES)
@_BODY_SWEEP
@given(data=st.data())
def test_any_body_that_reaches_a_routes_parser_is_answered_with_a_documented_status_and_json_error(
        svc, log_lines, route, data):
    sweep(seeded(svc), log_lines, data.draw(body_requests(route)))


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_each_value_of_each_body_written_wrong_and_each_body_damaged_is_answered_with_a_documented_json_error(
        svc, log_lines, route):
    seeded(svc)
    for request in damaged_requests(route):
        sweep(svc, log_lines, request)


def test_a_token_holding_a_lone_surrogate_is_refused_as_a_wrong_token(svc):
    status, body, _ = svc.call("GET", "/api/workflows", token=f"{API_TOKEN[:8]}\ud800")
    assert (status, body["error"]["code"]) == (401, "unauthorized"), body
