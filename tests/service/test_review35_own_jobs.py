"""A named client sees and cancels only its own jobs, on both runtimes (the local server over HTTP on loopback, the
Worker's entry over the stand-ins of its bindings): with its token, GET /api/status, POST /api/cancel and GET/HEAD
/api/result answer another client's job, or one the API token created, exactly as a job there is not (the same
status, code and message, and a request line like the unknown job's, naming no owner); a cancel of another's job
changes nothing and calls no RunPod. The API token sees and cancels every job, and a signed result URL is served to
whoever holds it. GET /api/metrics is the operator's (403 `operator_only` to a client), and the daily spend limit's
429 tells a client neither the spend nor the limit, while the operator's answer and the log line keep both."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from service_testkit import API_TOKEN, BUCKET, RUNPOD_KEY, WEBHOOK_SECRET, check_log_lines, edge_in_thread
from test_review17_cancel_route import CancellingRunPod
from test_review32_inputsvc_uploads import AUTH, Answer, CloudRuntime, LocalRuntime, image_bytes
from test_review33_ratelimit_runtimes import _cloud
from test_review34_clients_auth import ALICE, BOB, HASHES, NEVER_LOGGED, _bearer, _create
from test_service_cloudflare_entry import JsRequest

from service.signing import webhook_signature
from service.spend import utc_day

LIMIT = 0.01
NOBODYS = "0123456789abcdef" * 2  # a well-formed id no job has
PNG = image_bytes("image/png", seed=7)


@pytest.fixture
def fake_runpod() -> Iterator[CancellingRunPod]:  # replaces the kit's: the same plane, with /cancel
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


@pytest.fixture(params=["local", "cloud"])
def stack(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[Any]:
    """Two named clients (alice, bob) beside the API token, a daily spend limit of LIMIT, and RunPod serving /cancel."""
    if request.param == "cloud":
        for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=json.dumps(HASHES),
                            DAILY_SPEND_LIMIT_USD=str(LIMIT)):
            cloud.env.RATE_LIMIT_CREATE.per_minute = 100  # the kit's 2 a minute is for its rate limit tests
            yield cloud
        return
    moto_endpoint, fake, s3 = (request.getfixturevalue(n) for n in ("moto_endpoint", "fake_runpod", "s3"))
    with edge_in_thread(tmp_path, moto_endpoint, fake.base, log_lines, client_tokens=HASHES,
                        daily_spend_limit_usd=LIMIT) as server:
        running = LocalRuntime(server, s3, fake, log_lines)
        yield running
        running.close()


def _sql(stack: Any, sql: str, params: tuple = ()) -> list[tuple]:
    if isinstance(stack, CloudRuntime):
        return stack.env.DB.conn.execute(sql, params).fetchall()
    conn = sqlite3.connect(stack.server.service.app.config.db_path, isolation_level=None)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _jobs(stack: Any) -> dict[str, str]:
    """A queued job of alice's, of bob's and of the API token's."""
    made = {"alice": _create(stack, _bearer(ALICE), "alice's"), "bob": _create(stack, _bearer(BOB), "bob's"),
            "operator": _create(stack, AUTH, "the operator's")}
    assert all(answer.status == 202 for answer in made.values()), {k: v.body for k, v in made.items()}
    return {who: answer.json["job_id"] for who, answer in made.items()}


def _complete(stack: Any, job_id: str) -> str:
    """Store the job's one result image and deliver RunPod's COMPLETED webhook for it; the image's key."""
    key = f"results/{job_id}/0.png"
    if isinstance(stack, CloudRuntime):
        path = stack.env.RESULTS.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PNG)
        stack.env.RESULTS.types[key] = "image/png"
    else:
        stack.s3.put_object(Bucket=BUCKET, Key=key, Body=PNG, ContentType="image/png")
    ((rid,),) = _sql(stack, "SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,))
    image = {"key": key, "content_type": "image/png", "bytes": len(PNG), "sha256": hashlib.sha256(PNG).hexdigest(),
             "width": 40, "height": 24}
    payload = {"id": rid, "status": "COMPLETED", "delayTime": 800, "executionTime": 2500,
               "output": {"images": [image], "timings": {"total_ms": 2500}}}
    done = stack.call("POST", f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                      json.dumps(payload).encode(), {"content-type": "application/json"})
    assert done.status == 200 and done.json["applied"], done.body
    return key


def _fetch(stack: Any, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    """A bodiless request, as stack.call, with a streamed answer's body read (the Worker streams a result's)."""
    if isinstance(stack, LocalRuntime):
        return stack.call(method, path, b"", headers)
    run = stack.loop.run_until_complete
    reply = run(stack.worker.fetch(JsRequest(method, "https://api.example" + path, b"", headers)))
    raw = reply.body
    data = run(raw.read_all()) if hasattr(raw, "read_all") else raw.encode() if isinstance(raw, str) else \
        bytes(raw or b"")
    stack._log.extend(line for line in stack.capsys.readouterr().out.splitlines() if line.startswith("{"))
    return Answer(reply.status, data, reply.headers)


def _as_unknown(answer: Any, asked: str, unknown: Any, unknown_asked: str) -> None:
    """`answer` (to a request naming `asked`) is `unknown` (to the same request naming `unknown_asked`, of no job),
    but for the name itself."""
    assert (answer.status, answer.body.replace(asked.encode(), b"?")) == \
        (unknown.status, unknown.body.replace(unknown_asked.encode(), b"?")), (answer.body, unknown.body)
    assert {k: v for k, v in answer.headers.items() if k not in ("date", "content-length")} == \
        {k: v for k, v in unknown.headers.items() if k not in ("date", "content-length")}


def _lines(stack: Any) -> list[dict[str, Any]]:
    check_log_lines(list(stack._log), extra_forbidden=NEVER_LOGGED)
    return [json.loads(line) for line in stack._log]


def _line_of(lines: list[dict[str, Any]], method: str, path: str) -> dict[str, Any]:
    """Alice's one request line for `method` `path`."""
    (line,) = [x for x in lines if (x.get("http") or {}).get("path") == path and x["http"].get("method") == method
               and (x.get("data") or {}).get("client") == "alice"]
    return line


def _same_line(line: dict[str, Any], unknown: dict[str, Any]) -> None:
    """A refused read's request line says what the unknown job's says: nothing of the other job (its trace, its
    release) nor of whose it is."""
    drop = ("ts", "request_id", "http", "duration_ms")
    assert {k: v for k, v in line.items() if k not in drop} == {k: v for k, v in unknown.items() if k not in drop}
    assert line["http"]["status"] == unknown["http"]["status"]


def test_a_clients_status_read_of_another_callers_job_is_answered_as_no_job(stack):
    jobs = _jobs(stack)
    mine = stack.call("GET", f"/api/status/{jobs['alice']}", b"", _bearer(ALICE))
    assert mine.status == 200 and mine.json["client"] == "alice"
    unknown = stack.call("GET", f"/api/status/{NOBODYS}", b"", _bearer(ALICE))
    assert unknown.status == 404 and unknown.error["code"] == "unknown_job"
    for other in ("bob", "operator"):
        refused = stack.call("GET", f"/api/status/{jobs[other]}", b"", _bearer(ALICE))
        _as_unknown(refused, jobs[other], unknown, NOBODYS)
    # the API token sees every job, whoever created it
    assert [stack.call("GET", f"/api/status/{job}", b"", AUTH).json["client"] for job in jobs.values()] == \
        ["alice", "bob", None]
    lines = _lines(stack)
    unknown_line = _line_of(lines, "GET", f"/api/status/{NOBODYS}")
    for other in ("bob", "operator"):
        line = _line_of(lines, "GET", f"/api/status/{jobs[other]}")
        _same_line(line, unknown_line)
        assert line["data"] == {"client": "alice"} and line["job_id"] is None and line["trace_id"] is None


def test_a_clients_status_read_makes_no_more_database_reads_than_the_operators(request, tmp_path, log_lines):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=json.dumps(HASHES)):
        cloud.env.RATE_LIMIT_CREATE.per_minute = 100
        jobs = _jobs(cloud)
        counts = {}
        for who, token, job in (("operator", API_TOKEN, jobs["bob"]), ("own", ALICE, jobs["alice"]),
                                ("another's", ALICE, jobs["bob"]), ("none", ALICE, NOBODYS)):
            before = len(cloud.env.DB.calls)
            cloud.call("GET", f"/api/status/{job}", b"", _bearer(token))
            counts[who] = len(cloud.env.DB.calls) - before
        assert counts == dict.fromkeys(counts, counts["operator"]), counts


def test_a_clients_cancel_of_another_callers_job_changes_nothing_and_calls_no_runpod(stack, fake_runpod):
    jobs = _jobs(stack)
    unknown = stack.call("POST", f"/api/cancel/{NOBODYS}", b"", _bearer(ALICE))
    assert unknown.status == 404 and unknown.error["code"] == "unknown_job"
    for other in ("bob", "operator"):
        refused = stack.call("POST", f"/api/cancel/{jobs[other]}", b"", _bearer(ALICE))
        _as_unknown(refused, jobs[other], unknown, NOBODYS)
    assert fake_runpod.cancel_calls == []
    assert _sql(stack, "SELECT status FROM jobs WHERE id IN (?, ?)", (jobs["bob"], jobs["operator"])) == \
        [("queued",), ("queued",)]
    # its own job it cancels, and the API token any job
    mine = stack.call("POST", f"/api/cancel/{jobs['alice']}", b"", _bearer(ALICE))
    assert mine.status == 200 and mine.json["cancelled"] is True, mine.body
    assert len(fake_runpod.cancel_calls) == 1  # the plane records the cancels it is sent
    operators = stack.call("POST", f"/api/cancel/{jobs['bob']}", b"", AUTH)
    assert operators.status == 200 and operators.json["cancelled"] is True, operators.body
    lines = _lines(stack)
    unknown_line = _line_of(lines, "POST", f"/api/cancel/{NOBODYS}")
    for other in ("bob", "operator"):
        _same_line(_line_of(lines, "POST", f"/api/cancel/{jobs[other]}"), unknown_line)
    assert not [x for x in lines if x["event"] in ("job.cancel_failed", "job.cancel_skipped")
                and x["job_id"] in (jobs["bob"], jobs["operator"]) and (x.get("data") or {}).get("client") == "alice"]


def test_a_client_fetches_its_own_results_only_and_a_signed_url_serves_whoever_holds_it(stack):
    jobs = _jobs(stack)
    keys = {who: _complete(stack, job) for who, job in jobs.items()}
    mine = _fetch(stack, "GET", f"/api/result/{keys['alice']}", _bearer(ALICE))
    assert mine.status == 200 and mine.body == PNG
    nobodys = f"results/{NOBODYS}/0.png"
    for method in ("GET", "HEAD"):
        unknown = _fetch(stack, method, f"/api/result/{nobodys}", _bearer(ALICE))
        assert unknown.status == 404
        assert method == "HEAD" or unknown.error["code"] == "not_found"
        for other in ("bob", "operator"):
            refused = _fetch(stack, method, f"/api/result/{keys[other]}", _bearer(ALICE))
            _as_unknown(refused, keys[other], unknown, nobodys)
            # a key the store does not hold, of another's job: not "its job recorded no such result"
            absent = _fetch(stack, method, f"/api/result/results/{jobs[other]}/9.png", _bearer(ALICE))
            _as_unknown(absent, f"results/{jobs[other]}/9.png", unknown, nobodys)
            # nor a 304 for a copy named by its tag
            etag = _fetch(stack, "HEAD", f"/api/result/{keys[other]}", AUTH).headers["etag"]
            tagged = _fetch(stack, method, f"/api/result/{keys[other]}", {**_bearer(ALICE), "if-none-match": etag})
            _as_unknown(tagged, keys[other], unknown, nobodys)
    for who, job in jobs.items():
        assert _fetch(stack, "GET", f"/api/result/{keys[who]}", AUTH).body == PNG  # the operator's: every job's
        url = _fetch(stack, "GET", f"/api/status/{job}", AUTH).json["results"][0]["url"]
        signed = urlsplit(url)
        link = _fetch(stack, "GET", f"{signed.path}?{signed.query}")
        assert link.status == 200 and link.body == PNG
    lines = _lines(stack)
    unknown_line = _line_of(lines, "GET", f"/api/result/{nobodys}")
    for other in ("bob", "operator"):
        refused_lines = [x for x in lines if (x.get("http") or {}).get("path") == f"/api/result/{keys[other]}"
                         and x["http"]["method"] == "GET" and (x.get("data") or {}).get("client") == "alice"]
        assert len(refused_lines) == 2  # without and with If-None-Match
        for line in refused_lines:
            _same_line(line, unknown_line)


def test_the_metrics_report_is_the_operators_and_a_client_is_answered_403(stack):
    refused = stack.call("GET", "/api/metrics", b"", _bearer(ALICE))
    assert refused.status == 403 and refused.error["code"] == "operator_only", refused.body
    assert "API token" in refused.error["message"]
    assert "daily_spend" not in refused.body.decode()
    served = stack.call("GET", "/api/metrics", b"", AUTH)
    assert served.status == 200 and served.json["daily_spend"]["limit_usd"] == LIMIT


def test_the_spend_limits_429_tells_a_client_when_not_how_much_and_the_operator_both(stack):
    spent = 0.0123456
    _sql(stack, "INSERT INTO daily_spend (day, usd, jobs) VALUES (?, ?, 7)", (utc_day(time.time()), spent))
    clients = _create(stack, _bearer(ALICE))
    operators = _create(stack, AUTH)
    assert (clients.status, clients.error["code"]) == (operators.status, operators.error["code"]) == \
        (429, "spend_limit_reached")
    assert abs(int(clients.headers["retry-after"]) - int(operators.headers["retry-after"])) <= 1
    told = clients.error["message"]
    assert "daily spend limit is reached" in told and "T00:00:00Z" in told, told
    for hidden in ("$", "0.01", "api.daily_spend_limit_usd", "estimated"):
        assert hidden not in told, told
    for shown in ("$0.0123456", "$0.01 ", "api.daily_spend_limit_usd"):
        assert shown in operators.error["message"], operators.error["message"]
    lines = [x for x in _lines(stack) if x["event"] == "job.spend_limit_reached"]
    assert [(x["data"].get("client"), x["data"]["spend_usd"], x["data"]["limit_usd"]) for x in lines] == \
        [("alice", spent, LIMIT), (None, spent, LIMIT)]
    assert "$0.0123456" in lines[0]["message"]  # the operator's log keeps the amounts of a client's refusal
