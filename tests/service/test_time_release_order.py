"""GET /api/metrics over a year of releases: the per-release answer runs in the order the releases first
ran, each with when that was, as `goldgate metrics` shows them, not in their digests' random order."""

from __future__ import annotations

import hashlib
import sqlite3

from service_testkit import MIGRATIONS

from service.metrics import compute_sqlite
from service.migrate import apply_sqlite


def digest_tag(release: int) -> str:
    return f"registry.example/acme/worker@sha256:{hashlib.sha256(str(release).encode()).hexdigest()}"


def test_releases_come_in_the_order_they_first_ran_with_when_that_was():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    apply_sqlite(conn, MIGRATIONS)
    tags = [digest_tag(day) for day in range(40)]  # one release a day, each pinned by digest
    assert sorted(tags) != tags
    rows = [(f"j{day}-{n}", tag, f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{9 + n:02d}:00:00.000Z")
            for day, tag in enumerate(tags) for n in range(2)]
    rows.append(("late-old", tags[0], "2026-12-01T00:00:00.000Z"))  # an old release still running jobs later
    rows.append(("untagged", None, "2026-01-15T12:00:00.000Z"))
    conn.executemany("INSERT INTO job_metrics (job_id, stack, status, e2e_ms, worker_image_tag, created_at) "
                     "VALUES (?, 's', 'completed', 1000, ?, ?)", rows)

    groups = compute_sqlite(conn)["by_worker_image_tag"]

    assert [g["worker_image_tag"] for g in groups] == tags[:15] + [None] + tags[15:]
    assert groups[0]["first_seen"] == "2026-01-01T09:00:00.000Z" and groups[0]["count"] == 3
    assert groups[-1]["first_seen"] == "2026-02-12T09:00:00.000Z"
    # with `since`, a release counts from its first job in range
    later = compute_sqlite(conn, "2026-02-12")["by_worker_image_tag"]
    assert [(g["worker_image_tag"], g["first_seen"]) for g in later] == [
        (tags[-1], "2026-02-12T09:00:00.000Z"), (tags[0], "2026-12-01T00:00:00.000Z")]
