"""`goldgate metrics` on a stack whose job_metrics rows predate migration 0003 (no `images` count of their own): each
such row's job is looked up once for its image count, not once per sum it feeds. Twice over a million rows took
seconds locally, and neared D1's 30 s limit per query in the cloud."""

from __future__ import annotations

import json
from pathlib import Path

from ops_fixtures import NEW_TAG, OLD_TAG, build_stack_db

from goldgate.ops.fingerprint import connect_read_only
from goldgate.ops.metrics_report import build_report
from service.metrics import SqliteReader

JOBS = 2_000
FAIL_EVERY = 50


def test_each_legacy_row_looks_its_job_up_once_and_the_image_costs_hold(tmp_path: Path) -> None:
    db = build_stack_db(tmp_path / "staging.sqlite", jobs=JOBS, fail_every=FAIL_EVERY)   # images NULL: pre-0003 rows
    conn = connect_read_only(db)
    lookups: list[str] = []

    def counting_array_length(text: str) -> int:
        lookups.append(text)
        return len(json.loads(text))

    # Shadows SQLite's own json_array_length on this connection: each call is one job's results read.
    conn.create_function("json_array_length", 1, counting_array_length)
    try:
        report = build_report(SqliteReader(conn), "staging")
    finally:
        conn.close()
    completed = JOBS - JOBS // FAIL_EVERY
    assert len(lookups) == completed
    assert report["overall"]["images"] == completed   # one image per completed job (the fixture's results_json)
    by_tag = {g["worker_image_tag"]: g for g in report["by_worker_image_tag"]}
    assert by_tag[NEW_TAG]["images"] == JOBS // 2    # odd jobs: none failed
    assert by_tag[OLD_TAG]["images"] == JOBS // 2 - JOBS // FAIL_EVERY
    total = by_tag[NEW_TAG]["cost_total_usd"]
    assert abs(by_tag[NEW_TAG]["cost_per_1000_images_usd"] - total / (JOBS // 2) * 1000) < 1e-9
