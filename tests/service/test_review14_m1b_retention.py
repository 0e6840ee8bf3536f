"""Review 14 (m1b): retention's dry run counts every expired idempotency key, however many batches they take."""

from __future__ import annotations

import sqlite3

from goldgate import spec as specs
from goldgate.migrations import apply_sqlite
from goldgate.ops import retention
from service import retention as service_retention
from service.jobs import iso_ms

NOW = 1_795_000_000.0
DAY = 86_400


def test_a_dry_run_counts_expired_keys_past_the_first_batch_as_the_prune_then_deletes(tmp_path):
    db = tmp_path / "stack.sqlite"
    apply_sqlite(db)
    expired = 2 * service_retention.ROW_BATCH + 7
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, job_id, created_at, "
                         "created_at_ms) VALUES ('staging', ?, 'x', ?, ?, ?)",
                         [(f"k-{n:05d}", f"{n:032x}", iso_ms(NOW - 3 * DAY), int((NOW - 3 * DAY) * 1000))
                          for n in range(expired)]
                         + [("k-fresh", "f" * 32, iso_ms(NOW - 60), int((NOW - 60) * 1000))])
    conn.close()
    staging = specs.load_local("staging")
    dry = retention.prune_local(staging, db, 30, dry_run=True, now_s=NOW)
    assert dry.deleted["idempotency_keys"] == expired
    assert dry.remaining["idempotency_keys"] == 1
    real = retention.prune_local(staging, db, 30, now_s=NOW)
    assert real.deleted == dry.deleted and real.remaining == dry.remaining
