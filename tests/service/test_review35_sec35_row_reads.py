"""A named client's read of another caller's job brings nothing of that job out of the database: GET /api/status,
POST /api/cancel and GET/HEAD /api/result read with the client's name, so another's job comes back as the same empty
read as a job there is not. Were its row read and then dropped, the answer would take as long as that row is big (a
job's inputs may be a megabyte of JSON, its results hundreds of images), and a client holding another's job id (it is
in every result URL handed out) could time whether the job is still there and how big it is. On both runtimes: the
local server over HTTP on loopback, and the Worker's entry over the stand-ins of its bindings."""

from __future__ import annotations

from typing import Any

import pytest
from test_review32_inputsvc_uploads import CloudRuntime
from test_review34_clients_auth import ALICE, _bearer
from test_review35_own_jobs import (  # noqa: F401 - fake_runpod, stack: fixtures
    NOBODYS,
    _complete,
    _fetch,
    _jobs,
    _sql,
    fake_runpod,
    stack,
)


def _app(stack: Any) -> Any:  # noqa: F811 - the imported fixture's name
    return stack.entry.Default._app if isinstance(stack, CloudRuntime) else stack.server.service.app


def _recording_reads(stack: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:  # noqa: F811
    """Every row the app's database reads hand back from here on."""
    db, returned = _app(stack).db, []
    read = db.query

    async def query(sql: str, params: Any = ()) -> list[dict[str, Any]]:
        rows = await read(sql, params)
        returned.extend(rows)
        return rows

    monkeypatch.setattr(db, "query", query)
    return returned


def test_a_clients_reads_of_another_callers_job_bring_none_of_its_row_out_of_the_database(stack, monkeypatch):  # noqa: F811
    jobs = _jobs(stack)
    keys = {who: _complete(stack, job) for who, job in jobs.items()}
    traces = {who: _sql(stack, "SELECT trace_id FROM jobs WHERE id = ?", (job,))[0][0] for who, job in jobs.items()}
    _app(stack)  # the Worker builds its app on its first request, made above
    returned = _recording_reads(stack, monkeypatch)
    for other in ("bob", "operator"):
        answers = [stack.call("GET", f"/api/status/{jobs[other]}", b"", _bearer(ALICE)),
                   stack.call("POST", f"/api/cancel/{jobs[other]}", b"", _bearer(ALICE)),
                   _fetch(stack, "GET", f"/api/result/{keys[other]}", _bearer(ALICE)),
                   _fetch(stack, "HEAD", f"/api/result/{keys[other]}", _bearer(ALICE))]
        assert [answer.status for answer in answers] == [404] * 4
        leaked = [row for row in returned if traces[other] in row.values() or jobs[other] in row.values()]
        assert leaked == [], f"{other}'s job row was read for alice: {leaked[0]}"
    # her own job is read as before
    assert stack.call("GET", f"/api/status/{jobs['alice']}", b"", _bearer(ALICE)).json["trace_id"] == traces["alice"]
    assert _fetch(stack, "GET", f"/api/result/{keys['alice']}", _bearer(ALICE)).status == 200
    assert stack.call("GET", f"/api/status/{NOBODYS}", b"", _bearer(ALICE)).status == 404
