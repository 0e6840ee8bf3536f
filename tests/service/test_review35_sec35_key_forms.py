"""Another caller's result, asked for by a named client under any other spelling of its key, is answered as a key
of no job: percent-encoded, reached through a dot segment from the client's own job, with half or a wrong signed
link beside the client's token, or naming the worker's outcome object. And a client's traceparent names its refused
read's line as it names the unknown job's, never the other job's trace. On both runtimes."""

from __future__ import annotations

from test_review34_clients_auth import ALICE, _bearer
from test_review35_own_jobs import (  # noqa: F401 - fake_runpod, stack: fixtures
    NOBODYS,
    _as_unknown,
    _complete,
    _fetch,
    _jobs,
    _lines,
    _sql,
    fake_runpod,
    stack,
)

TRACE = "ab" * 16
TRACED = {**_bearer(ALICE), "traceparent": f"00-{TRACE}-{'cd' * 8}-01"}


def test_another_callers_result_under_any_spelling_of_its_key_is_answered_as_no_jobs(stack):  # noqa: F811
    jobs = _jobs(stack)
    keys = {who: _complete(stack, job) for who, job in jobs.items()}
    for other in ("bob", "operator"):
        job = jobs[other]
        for spelled, unknown in (
                (f"results%2F{job}%2F0.png", f"results%2F{NOBODYS}%2F0.png"),
                (f"results/{jobs['alice']}/../{job}/0.png", f"results/{NOBODYS}/0.png"),
                (f"{keys[other]}?exp=1&sig={'0' * 64}", f"results/{NOBODYS}/0.png?exp=1&sig={'0' * 64}"),
                (f"{keys[other]}?exp=9999999999", f"results/{NOBODYS}/0.png?exp=9999999999"),
                (f"{keys[other]}?sig={'0' * 64}", f"results/{NOBODYS}/0.png?sig={'0' * 64}"),
                (f"results/{job}/outcome.json", f"results/{NOBODYS}/outcome.json")):
            for method in ("GET", "HEAD"):
                answer = _fetch(stack, method, f"/api/result/{spelled}", _bearer(ALICE))
                assert answer.status == 404, (spelled, answer.body)
                _as_unknown(answer, job, _fetch(stack, method, f"/api/result/{unknown}", _bearer(ALICE)), NOBODYS)


def test_a_clients_traceparent_names_its_refused_read_of_another_callers_job_not_that_jobs_trace(stack):  # noqa: F811
    jobs = _jobs(stack)
    traces = {who: _sql(stack, "SELECT trace_id FROM jobs WHERE id = ?", (job,))[0][0] for who, job in jobs.items()}
    unknown = stack.call("GET", f"/api/status/{NOBODYS}", b"", TRACED)
    for other in ("bob", "operator"):
        _as_unknown(stack.call("GET", f"/api/status/{jobs[other]}", b"", TRACED), jobs[other], unknown, NOBODYS)
        _as_unknown(stack.call("POST", f"/api/cancel/{jobs[other]}", b"", TRACED), jobs[other],
                    stack.call("POST", f"/api/cancel/{NOBODYS}", b"", TRACED), NOBODYS)
    own = stack.call("GET", f"/api/status/{jobs['alice']}", b"", TRACED)
    assert own.json["trace_id"] == traces["alice"] != TRACE
    lines = {(x["http"]["method"], x["http"]["path"].rsplit("/", 1)[-1]): x for x in _lines(stack)
             if (x.get("data") or {}).get("client") == "alice" and "http" in x}
    for other in ("bob", "operator"):
        for method in ("GET", "POST"):
            line = lines[(method, jobs[other])]
            assert (line["trace_id"], line["job_id"]) == (TRACE, None), line
    assert lines[("GET", jobs["alice"])]["trace_id"] == traces["alice"]  # a read of its own job: that job's trace
