"""GET /api/jobs under real Pyodide (Python 3.12 and 3.13: the Worker's real upload, `run_worker.mjs --serve`, over
sql.js's D1) and the local server (`python -m service.local_server`) alike: jobs made through the API are listed
newest first, a page at a time, each once; a HEAD answers as the GET without a body; and the parsing that rests on
the interpreter's own stdlib (fromisoformat for `created_after`, base64 for `cursor`) takes and refuses the same
values in both: a time before year 1 in UTC lists every job, a trailing NUL is a 400, a cursor respelled to the
same bytes is a 400."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import runtime_parity
from runtime_parity import AUTH, JSONCT, Cloud, Local, create_body, send
from test_worker_in_pyodide import node  # noqa: F401 - the fixture: node with the pinned Pyodide installed

REPO = Path(__file__).resolve().parents[2]
JOBS = 5
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _get(runtime: Any, query: str, method: str = "GET") -> dict[str, Any]:
    reply = send(runtime.port, method, f"/api/jobs?{query}", [AUTH], None)
    return {"status": reply["status"], "json": json.loads(reply["body"]) if reply["body"] else None,
            "length": dict(reply["headers"]).get("content-length")}


def _scenario(runtime: Any) -> dict[str, Any]:
    made = []
    for i in range(JOBS):
        created = send(runtime.port, "POST", "/api/queue/create", [AUTH, JSONCT], create_body(f"listed {i}"))
        assert created["status"] == 202, created["body"]
        made.append(json.loads(created["body"])["job_id"])
    pages, cursor = [], None
    while len(pages) < 10:
        page = _get(runtime, "limit=2" + (f"&cursor={quote(cursor)}" if cursor else ""))
        assert page["status"] == 200, page
        pages.append(page["json"])
        cursor = page["json"]["next_cursor"]
        if cursor is None:
            break
    first = _get(runtime, "limit=2")
    position, mac = first["json"]["next_cursor"].split(".")
    respelled = f"{position}.{mac[:-1]}{ALPHABET[ALPHABET.index(mac[-1]) ^ 1]}"  # a bit the decoder does not read
    same_bytes = f"{position}.{mac}=="
    return {
        "made": made, "pages": pages, "first": first, "head": _get(runtime, "limit=2", "HEAD"),
        "before_year_1": _get(runtime, "created_after=" + quote("0001-01-01T00:00:00+14:00")),
        "trailing_nul": _get(runtime, "created_after=2027-01-15T08:00:00%00"),
        "week_date": _get(runtime, "created_after=2000-W01-1T00:00:00Z&status=queued,in_progress,failed"),
        "changed": _get(runtime, f"limit=2&cursor={quote(respelled)}"),
        "same_bytes": _get(runtime, f"limit=2&cursor={quote(same_bytes)}"),
    }


@pytest.mark.parametrize("pyodide", ["pyodide", "pyodide-py313"])
def test_both_runtimes_list_page_and_refuse_alike(pyodide, node, tmp_path):  # noqa: F811
    fake = runtime_parity.FakeRunPod()
    runtimes: list[Any] = []
    try:
        runtimes.append(Local(REPO, tmp_path, fake.base))
        runtimes.append(Cloud(REPO, tmp_path, fake.base, pyodide))
        seen = {rt.name: _scenario(rt) for rt in runtimes}
    finally:
        for rt in runtimes:
            rt.stop()
        fake.server.shutdown()
        fake.server.server_close()
    for name, got in seen.items():
        listed = [job for page in got["pages"] for job in page["jobs"]]
        assert [len(page["jobs"]) for page in got["pages"]] == [2, 2, 1], (name, got["pages"])
        assert [job["job_id"] for job in listed] == list(reversed(got["made"])), name  # newest first, each once
        keys = [(job["created_at"], job["job_id"]) for job in listed]
        assert keys == sorted(keys, reverse=True), name
        assert got["head"]["status"] == 200 and got["head"]["json"] is None, (name, got["head"])
        assert got["head"]["length"] == got["first"]["length"], name
        assert got["before_year_1"]["status"] == 200, (name, got["before_year_1"])
        assert {job["job_id"] for job in got["before_year_1"]["json"]["jobs"]} == set(got["made"]), name
        assert {job["job_id"] for job in got["week_date"]["json"]["jobs"]} == set(got["made"]), name
        for refused, field in (("trailing_nul", "created_after"), ("changed", "cursor"), ("same_bytes", "cursor")):
            answer = got[refused]
            assert answer["status"] == 400 and answer["json"]["error"]["field"] == field, (name, refused, answer)
    for refused in ("trailing_nul", "changed"):
        local, cloud = (seen[name][refused]["json"]["error"] for name in ("local", "cloud"))
        assert [local[k] for k in ("code", "field", "message")] == [cloud[k] for k in ("code", "field", "message")]
