"""GET /api/jobs on both runtimes (the local server over HTTP on loopback, the Worker's entry over the stand-ins of its
bindings): a named client pages through its own jobs only, newest first, each exactly once while jobs are created
between its pages; the API token lists every job, or one client's; `status` and `created_after` filter; every bad
parameter is a 400 naming it, a client's `client` a 403, before anything is read; a summary never carries inputs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from service_testkit import API_TOKEN
from test_review33_ratelimit_runtimes import _cloud
from test_review34_clients_auth import ALICE, BOB, HASHES, _bearer, _create
from test_review35_own_jobs import _lines, _sql, fake_runpod, stack  # noqa: F401

from service.jobs import NewJob, insert_statement

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
SUMMARY = {"job_id", "status", "workflow_id", "workflow_version", "client", "created_at", "updated_at", "finished_at",
           "trace_id", "runpod_job_id"}


def _insert(runtime: Any, n: int, client: str | None, start: float = T0, prefix: str = "a", ties: bool = False,
            statuses: tuple[str, ...] = ("queued",)) -> list[str]:
    """`n` jobs of `client`'s written straight into the database, a second apart from `start` (with `ties`, two share
    each created_at, a millisecond apart: the id orders them), their statuses taken in turn from `statuses`."""
    ids = []
    for i in range(n):
        job_id = f"{prefix}{i:031x}"
        job = NewJob(id=job_id, stack="test", workflow_id="sdxl-txt2img", workflow_version="v1",
                     inputs={"prompt": "x" * 2000}, trace_id=f"{i:032x}",
                     created_at_s=start + (i // 2 * 0.001 if ties else i), worker_image_tag=None, client=client)
        statement = insert_statement(job)
        _sql(runtime, statement.sql, statement.params)
        status = statuses[i % len(statuses)]
        if status != "queued":
            _sql(runtime, "UPDATE jobs SET status = ?, finished_at = updated_at WHERE id = ?", (status, job_id))
        ids.append(job_id)
    return ids


def _get(runtime: Any, token: str, query: str = "", method: str = "GET") -> Any:
    return runtime.call(method, "/api/jobs" + (f"?{query}" if query else ""), b"", _bearer(token))


def _walk(runtime: Any, token: str, query: str = "", between: Any = None) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor; `between(i)` runs after page i."""
    pages, cursor = [], None
    while True:
        answer = _get(runtime, token, "&".join(p for p in (query, cursor and f"cursor={quote(cursor)}") if p))
        assert answer.status == 200, answer.body
        pages.append(answer.json["jobs"])
        cursor = answer.json["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000
        if between is not None:
            between(len(pages))


def _newest_first(listed: list[dict[str, Any]]) -> bool:
    keys = [(job["created_at"], job["job_id"]) for job in listed]
    return keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)


def test_a_client_pages_through_its_own_jobs_once_each_while_jobs_are_created_between_pages(stack):  # noqa: F811
    made = _create(stack, _bearer(ALICE), "alice's own")  # through the API: the create records its client
    assert made.status == 202, made.body
    mine = set(_insert(stack, 23, "alice", ties=True)) | {made.json["job_id"]}  # created_at ties in pairs
    others = _insert(stack, 5, "bob", prefix="b") + _insert(stack, 3, None, prefix="c")
    later: list[str] = []

    def create_more(i: int) -> None:  # newer than every page read so far: never on a later page
        later.extend(_insert(stack, 2, "alice", start=T0 + 10_000 + i * 10, prefix=f"d{i:x}"))
        later.extend(_insert(stack, 1, "bob", start=T0 + 10_000 + i * 10, prefix=f"e{i:x}"))

    pages = _walk(stack, ALICE, "limit=5", between=create_more)
    listed = [job for page in pages for job in page]
    assert [len(page) for page in pages[:-1]] == [5] * (len(pages) - 1) and len(pages) == 5
    assert sorted(job["job_id"] for job in listed) == sorted(mine) and _newest_first(listed)
    assert all(set(job) == SUMMARY and job["client"] == "alice" for job in listed)
    assert later and not set(later) & {job["job_id"] for job in listed}
    # the next walk starts at the newest: the jobs made meanwhile first
    again = [job["job_id"] for page in _walk(stack, ALICE, "limit=200") for job in page]
    assert set(again) == mine | {j for j in later if j.startswith("d")} and not set(again) & set(others)


def test_the_api_token_lists_every_job_or_one_clients_and_a_client_may_not_ask_for_anothers(stack):  # noqa: F811
    alice = set(_insert(stack, 4, "alice"))
    bob = set(_insert(stack, 3, "bob", prefix="b", start=T0 + 0.5))
    operator = set(_insert(stack, 2, None, prefix="c", start=T0 + 0.25))
    everyone = [job for page in _walk(stack, API_TOKEN, "limit=2") for job in page]
    assert {job["job_id"] for job in everyone} == alice | bob | operator and _newest_first(everyone)
    assert len(everyone) == 9
    assert {job["job_id"] for page in _walk(stack, API_TOKEN, "client=bob") for job in page} == bob
    assert _get(stack, API_TOKEN, "client=carol").json == {"jobs": [], "next_cursor": None}  # no such client: none
    assert {job["job_id"] for page in _walk(stack, BOB) for job in page} == bob
    for query in ("client=bob", "client=alice", "client=", "client=bob&limit=1"):
        refused = _get(stack, ALICE, query)
        assert refused.status == 403 and refused.error["code"] == "operator_only", refused.body
        assert refused.error["field"] == "client" and "bob" not in refused.error["message"]
    refused = _get(stack, "not-a-token")
    assert refused.status == 401 and refused.error["code"] == "unauthorized"


def test_status_and_created_after_filter_every_page_and_a_sparse_status_still_reaches_every_match(stack):  # noqa: F811
    ids = _insert(stack, 40, "alice", statuses=("completed",) * 9 + ("failed",))
    rows = {r[0]: (r[1], r[2]) for r in _sql(stack, "SELECT id, status, created_at FROM jobs WHERE client = 'alice'")}
    cut = rows[ids[19]][1]  # created_after is strict: ids[20] on

    def walked(query: str, limit: int = 5) -> list[str]:
        listed = [job for page in _walk(stack, ALICE, f"{query}&limit={limit}") for job in page]
        assert _newest_first(listed)
        return [job["job_id"] for job in listed]

    failed = walked("status=failed")
    assert set(failed) == {i for i in ids if rows[i][0] == "failed"} and len(failed) == 4
    # a page reads at most `limit` jobs: the failed ones come on the pages that reach them, some pages empty
    pages = _walk(stack, ALICE, "status=failed&limit=5")
    assert len(pages) == 8 and [] in pages and max(len(page) for page in pages) <= 5
    assert set(walked("status=failed,completed", 7)) == set(ids)
    assert walked("status=queued,in_progress") == []
    assert set(walked(f"created_after={quote(cut)}")) == set(ids[20:])
    assert set(walked(f"created_after={quote(cut)}&status=failed")) == {i for i in ids[20:] if rows[i][0] == "failed"}
    # another spelling of the same time, with an offset, and a naive time read as UTC
    at = "2027-01-15T09:00:19+01:00"  # T0 + 19 s: ids[19]'s created_at
    assert cut == "2027-01-15T08:00:19.000Z"
    assert set(walked(f"created_after={quote(at)}")) == set(ids[20:])
    assert set(walked("created_after=2027-01-15T08:00:19.0004")) == set(ids[20:])
    assert set(walked("created_after=2027-01-15T08:00:18.9999")) == set(ids[19:])
    done = _get(stack, ALICE, "status=failed&limit=200").json["jobs"]
    assert all(job["status"] == "failed" and job["finished_at"] for job in done)


def test_a_summary_carries_no_inputs_and_head_answers_as_get_without_a_body(stack):  # noqa: F811
    _insert(stack, 3, "alice")
    got = _get(stack, ALICE)
    assert got.status == 200 and got.headers["content-type"] == "application/json"
    assert b"xxxxxxxx" not in got.body and len(got.body) < 3 * 400  # each job's 2 kB prompt stays in the row
    head = _get(stack, ALICE, method="HEAD")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) == len(got.body)
    posted = stack.call("POST", "/api/jobs", b"", _bearer(ALICE))
    assert posted.status == 405 and "GET" in posted.headers["allow"]
    lines = [x for x in _lines(stack) if (x.get("http") or {}).get("path") == "/api/jobs"]
    assert [(x["http"]["method"], x["http"]["status"]) for x in lines] == [("GET", 200), ("HEAD", 200), ("POST", 405)]
    assert [x["data"] for x in lines[:2]] == [{"client": "alice"}] * 2  # as any read of a client's


def _cursor(runtime: Any, token: str, query: str) -> str:
    answer = _get(runtime, token, query)
    assert answer.status == 200 and answer.json["next_cursor"], answer.body
    return answer.json["next_cursor"]


BAD = [  # (query, the field the 400 names)
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=-1", "limit"), ("limit=99999999999999999999", "limit"),
    ("limit=1e3", "limit"), ("limit=%2B5", "limit"), ("limit=", "limit"), ("limit=5&limit=5", "limit"),
    ("limit=%D9%A5", "limit"), ("limit=5%00", "limit"),
    ("status=done", "status"), ("status=", "status"), ("status=queued,", "status"), ("status=QUEUED", "status"),
    ("status=queued&status=failed", "status"), ("status=queued'%20OR%20'1'='1", "status"), ("status=%00", "status"),
    ("created_after=yesterday", "created_after"), ("created_after=", "created_after"),
    ("created_after=2027-01-01T00:00:00Z&created_after=2027-01-02T00:00:00Z", "created_after"),
    ("created_after=" + "2" * 500, "created_after"), ("created_after=2027-13-01", "created_after"),
    ("created_after=2027-01-01%00", "created_after"),
    ("client=Bob", "client"), ("client=bob;DROP%20TABLE%20jobs", "client"), ("client=" + "a" * 33, "client"),
    ("client=bob&client=alice", "client"), ("client=%00", "client"),
    ("cursor=", "cursor"), ("cursor=abc", "cursor"), ("cursor=" + "A" * 5000, "cursor"), ("cursor=%00.%00", "cursor"),
    ("cursor=W10.AAAAAAAAAAAAAAAAAAAAAA", "cursor"), ("cursor=%27%20OR%201%3D1%20--", "cursor"),
    ("order=asc", "order"), ("offset=10", "offset"), ("LIMIT=5", "LIMIT"), ("%00=1", "\x00"),
]


@pytest.mark.parametrize(("query", "field"), BAD, ids=[q[:40] for q, _ in BAD])
def test_every_bad_parameter_is_a_400_naming_it_before_anything_is_read(stack, query, field):  # noqa: F811
    _insert(stack, 2, "alice")
    for token in (API_TOKEN, ALICE) if not query.startswith("client=") else (API_TOKEN,):
        refused = _get(stack, token, query)
        assert refused.status == 400 and refused.error["code"] == "invalid_query", (query, refused.body)
        assert refused.error["field"] == field, refused.body
    assert _sql(stack, "SELECT COUNT(*) FROM jobs") == [(2,)]


def test_a_changed_or_borrowed_cursor_is_a_400_naming_cursor(stack):  # noqa: F811
    _insert(stack, 6, "alice")
    _insert(stack, 6, "bob", prefix="b")
    cursor = _cursor(stack, ALICE, "limit=2")
    assert _get(stack, ALICE, f"limit=2&cursor={quote(cursor)}").status == 200
    assert _get(stack, ALICE, f"limit=3&cursor={quote(cursor)}").status == 200  # the limit may change
    position, mac = cursor.split(".")
    flipped = [position[:-1] + ("A" if position[-1] != "A" else "B") + "." + mac,
               position + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B"), position, cursor + "."]
    for changed in flipped:
        refused = _get(stack, ALICE, f"cursor={quote(changed)}")
        assert refused.status == 400 and refused.error["field"] == "cursor", (changed, refused.body)
    # made for another listing: bob's, another status, another created_after, or the operator's of every job
    for token, query in ((BOB, ""), (ALICE, "status=queued"), (ALICE, "created_after=2020-01-01T00:00:00Z"),
                         (API_TOKEN, ""), (API_TOKEN, "client=bob")):
        refused = _get(stack, token, "&".join(p for p in (query, f"cursor={quote(cursor)}") if p))
        assert refused.status == 400 and refused.error["field"] == "cursor", (token, query, refused.body)
    operators = _cursor(stack, API_TOKEN, "client=alice&limit=2")
    assert _get(stack, API_TOKEN, f"client=alice&cursor={quote(operators)}").status == 200
    assert _get(stack, API_TOKEN, f"cursor={quote(operators)}").status == 400
    # the operator's listing of alice's jobs is alice's own listing: one cursor serves both
    assert _get(stack, ALICE, f"cursor={quote(operators)}").json == _get(stack, ALICE, f"cursor={quote(cursor)}").json


def test_a_page_is_one_read_of_the_database_whatever_its_filters(request, tmp_path, log_lines):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=json.dumps(HASHES)):
        _insert(cloud, 30, "alice")
        for token, query in ((ALICE, "status=failed&limit=10"), (ALICE, ""), (API_TOKEN, "client=alice&limit=1"),
                             (API_TOKEN, "created_after=2020-01-01T00:00:00Z&status=queued")):
            before = len(cloud.env.DB.calls)
            assert _get(cloud, token, query).status == 200
            assert len(cloud.env.DB.calls) - before == 1, query
