"""`goldgate stuck` on a local stack judges a job by when the running host started (state.json's `started_at`) as
well as by its window: the edges of that rule. A host start the clock reads as later than now (a clock stepped back
since) judges no job; a job created in the very millisecond the host started went to that host's RunPod, not to an
earlier one, so it is not said to be "created before the stack's host started"; a start that is no UTC time is no
start."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ops_fixtures import build_stack_db

from goldgate import spec as specs
from goldgate.local.state import host_started_s
from goldgate.ops import stuck
from service.jobs import iso_ms

STAGING = specs.load_local("staging")
NOW = 1_790_000_000.0   # 2026-09-21, a fixed clock


def _db(tmp_path: Path, *created: float) -> Path:
    db = build_stack_db(tmp_path / "db.sqlite", jobs=0)
    with sqlite3.connect(db) as conn:
        for n, at in enumerate(created):
            conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "runpod_job_id, created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
                         "VALUES (?, 'staging', 'w', 'w@1', '{}', 't', 'queued', ?, ?, ?, ?, 3600000, 10000)",
                         (f"{n:032x}", f"rp-{n}", iso_ms(at), int(at * 1000), iso_ms(at)))
    conn.close()
    return db


def test_a_host_start_later_than_now_judges_no_job(tmp_path):
    # A job 30 s old, a host start 5 min in the future (the clock was stepped back since the host started).
    db = _db(tmp_path, NOW - 30)
    report = stuck.list_local(STAGING, db, 10, now_s=NOW, host_started_s=NOW + 300)
    assert (report.stuck, report.younger, report.jobs) == (0, 1, []), report
    assert report.host_started_at is None
    # The same host start, read on a clock past it, does list the job as stuck at once.
    report = stuck.list_local(STAGING, db, 10, now_s=NOW + 600, host_started_s=NOW + 300)
    assert [j.before_host_start for j in report.jobs] == [True] and report.younger == 0


def test_a_job_created_in_the_millisecond_the_host_started_is_not_of_an_earlier_host(tmp_path):
    started = NOW - 20 * 60   # the host started 20 min ago; the window (10 min) lists its own old jobs
    db = _db(tmp_path, started, started - 0.001)
    report = stuck.list_local(STAGING, db, 10, now_s=NOW, host_started_s=started)
    by_id = {j.id: j for j in report.jobs}
    assert len(by_id) == 2, report
    at_start, before = by_id[f"{0:032x}"], by_id[f"{1:032x}"]
    assert before.before_host_start and "created before the stack's host started" in (before.advice or "")
    assert not at_start.before_host_start and at_start.advice is None, at_start


def test_started_at_is_read_only_as_a_utc_time():
    ten = datetime(2026, 9, 21, 10, tzinfo=UTC).timestamp()
    assert host_started_s({"started_at": "2026-09-21T10:00:00Z"}) == ten
    assert host_started_s({"started_at": "2026-09-21T10:00:00.250Z"}) == ten + 0.25
    assert host_started_s({"started_at": "2026-09-21T10:00:00.250000Z"}) == ten + 0.25   # to the microsecond
    for odd in ("2026-09-21T10:00:00", "2026-09-21T10:00:00+02:00", "2026-02-30T10:00:00Z", ten, None):
        assert host_started_s({"started_at": odd}) is None, odd
    assert host_started_s({}) is None and host_started_s(None) is None


def test_the_text_names_the_host_start_only_when_it_lists_more_than_the_window(tmp_path):
    db = _db(tmp_path, NOW - 15 * 60)
    long_ago = stuck.render_text(stuck.list_local(STAGING, db, 10, now_s=NOW, host_started_s=NOW - 3600).to_dict())
    assert long_ago.startswith("staging: 1 job stuck (local: queued or in progress for more than 10 min, oldest "
                               "first;"), long_ago
    recent = stuck.render_text(stuck.list_local(STAGING, db, 10, now_s=NOW, host_started_s=NOW - 60).to_dict())
    assert f"for more than 10 min or since before its host started ({iso_ms(NOW - 60)})" in recent, recent


def test_started_at_is_utc_whatever_the_machines_time_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert host_started_s({"started_at": "2026-09-21T10:00:00Z"}) == datetime(2026, 9, 21, 10,
                                                                                   tzinfo=UTC).timestamp()
    finally:
        monkeypatch.undo()
        time.tzset()
