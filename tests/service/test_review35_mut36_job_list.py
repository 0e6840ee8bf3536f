"""GET /api/jobs, as docs/openapi.json describes it, where session 35's mutation audit found nothing holding it: a page
holds 50 jobs when no limit is asked; a cursor made before the webhook secret rotated still leads on while the old
secret is the previous one; created_after reads an unencoded '+' (a space) and padding as the time meant, a time with
no offset as UTC whatever the host's zone, a time past every job as none, and one over 64 characters as a 400. The core
App over SQLite, moto's S3 and the fake RunPod."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from service_testkit import API_TOKEN, WEBHOOK_SECRET, Harness
from test_review34_spend_routes import START, stack  # noqa: F401 (stack: a fixture)

from service.jobs import NewJob, insert_statement

NEW_SECRET = "whs-WebhookSecret-rotated-7e5d3c1b"
REPO = Path(__file__).resolve().parents[2]


def _insert(db_path: Path, n: int, start: float = START) -> list[str]:
    """`n` queued jobs of the API token's written straight into the database, a second apart from `start`."""
    ids = []
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        for i in range(n):
            job = NewJob(id=f"f{i:031x}", stack="test", workflow_id="sdxl-txt2img", workflow_version="v1",
                         inputs={"prompt": "x"}, trace_id=f"{i:032x}", created_at_s=start + i, worker_image_tag=None)
            statement = insert_statement(job)
            conn.execute(statement.sql, statement.params)
            ids.append(job.id)
    finally:
        conn.close()
    return ids


def _list(svc: Harness, query: str = "") -> tuple[int, Any]:
    status, body, _ = svc.call("GET", "/api/jobs", token=API_TOKEN, query=query)
    return status, body


def _listed(svc: Harness, query: str) -> set[str]:
    status, body = _list(svc, query + "&limit=200")
    assert status == 200, body
    assert body["next_cursor"] is None
    return {job["job_id"] for job in body["jobs"]}


def test_a_page_without_a_limit_holds_fifty_jobs_and_its_cursor_leads_to_the_rest(stack, db_path) -> None:  # noqa: F811
    ids = _insert(db_path, 51)
    svc = stack()
    status, first = _list(svc)
    assert status == 200 and len(first["jobs"]) == 50 and first["next_cursor"], first
    assert [job["job_id"] for job in first["jobs"]] == ids[:0:-1]  # newest first
    status, rest = _list(svc, f"cursor={first['next_cursor']}")
    assert status == 200 and [job["job_id"] for job in rest["jobs"]] == [ids[0]] and rest["next_cursor"] is None


def test_a_cursor_made_before_the_webhook_secret_rotated_leads_on_until_the_old_secret_is_dropped(
        stack, db_path) -> None:  # noqa: F811
    ids = _insert(db_path, 5)
    status, first = _list(stack(), "limit=2")
    assert status == 200 and first["next_cursor"], first
    rotating = stack(webhook_secret=NEW_SECRET, webhook_secret_previous=WEBHOOK_SECRET)
    status, second = _list(rotating, f"limit=2&cursor={first['next_cursor']}")
    assert status == 200, second
    assert [job["job_id"] for job in second["jobs"]] == [ids[2], ids[1]]
    status, third = _list(rotating, f"limit=2&cursor={second['next_cursor']}")  # made with the new secret
    assert status == 200 and [job["job_id"] for job in third["jobs"]] == [ids[0]], third
    status, refused = _list(stack(webhook_secret=NEW_SECRET), f"limit=2&cursor={first['next_cursor']}")
    assert status == 400 and refused["error"]["field"] == "cursor", refused


def test_created_after_reads_an_unencoded_plus_and_padding_as_the_time_meant(stack, db_path) -> None:  # noqa: F811
    ids = _insert(db_path, 30)  # ids[i] created at 2027-01-15T08:00:<i>.000Z
    svc = stack()
    later = set(ids[20:])
    assert _listed(svc, "created_after=2027-01-15T09:00:19%2B01:00") == later
    assert _listed(svc, "created_after=2027-01-15T09:00:19+01:00") == later  # '+' unencoded: a space
    assert _listed(svc, "created_after=%202027-01-15T08:00:19Z%20") == later
    assert _listed(svc, "created_after=2027-01-15t09:00:19+01:00") == later  # a lowercase t, as ISO 8601 allows
    assert _listed(svc, "created_after=2027-01-15T08:00:19z") == later


def test_a_cursor_of_several_statuses_made_on_another_isolate_leads_on_here(stack, db_path) -> None:  # noqa: F811
    """A Worker's isolates each hash strings with their own seed: a cursor one made is followed on another."""
    ids = _insert(db_path, 5)
    query = "status=timed_out,queued,failed,completed,cancelled,in_progress&limit=2"
    make = ("import sys; from service.joblist import parse_listing, make_cursor; "
            "listing = parse_listing(sys.argv[1], None, (sys.argv[2], None)); "
            "print(make_cursor(sys.argv[2], listing, tuple(sys.argv[3:])))")
    svc = stack()
    status, first = _list(svc, query)
    assert status == 200, first
    last = first["jobs"][-1]
    for seed in range(6):
        made = subprocess.run([sys.executable, "-c", make, query, WEBHOOK_SECRET, last["created_at"], last["job_id"]],
                              env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)},
                              capture_output=True, text=True, check=True).stdout.strip()
        status, second = _list(svc, f"{query}&cursor={made}")
        assert status == 200, (seed, second)
        assert [job["job_id"] for job in second["jobs"]] == [ids[2], ids[1]]


def test_created_after_with_no_offset_is_utc_whatever_the_hosts_zone(stack, db_path) -> None:  # noqa: F811
    ids = _insert(db_path, 30)
    svc = stack()
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"  # UTC-5 in January: a local reading would take 13:00:19Z
    time.tzset()
    try:
        assert _listed(svc, "created_after=2027-01-15T08:00:19") == set(ids[20:])
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_created_after_past_every_job_lists_none_and_one_over_64_characters_is_refused(
        stack, db_path) -> None:  # noqa: F811
    _insert(db_path, 3)
    svc = stack()
    for last in ("9999-12-31T23:59:59.9999Z", "9999-12-31T23:59:59.999999"):
        status, body = _list(svc, f"created_after={last}")
        assert status == 200 and body == {"jobs": [], "next_cursor": None}, (last, body)
    long = "2027-01-15T08:00:19." + "0" * 44 + "Z"  # 65 characters, a time Python would read
    assert len(long) == 65
    status, body = _list(svc, f"created_after={long}")
    assert status == 400 and body["error"]["field"] == "created_after", body

