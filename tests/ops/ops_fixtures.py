"""Helpers for operations tests: a migrated stack database filled with jobs and metrics by plain SQL, and a migrated
D1 database on the loopback stand-in."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_sqlite, apply_with
from goldgate.ops.polling_scan import scan_tree as real_scan_tree  # the real one, whatever a test patches

OLD_TAG = "local/worker@sha256:" + "a" * 64
NEW_TAG = "local/worker@sha256:" + "b" * 64
# The D1 stand-in and moto's S3 in a process of their own, for the cloud drill's tests and bench/dr_drill.py --cloud:
# what the drill's process measures (tracemalloc, CPU) is then the drill's alone (moto keeps objects in memory, the
# stand-in its time-travel snapshots). argv: the API token, then the stand-in's import_polls. It prints where they
# listen as one JSON line and serves until its stdin closes.
STANDINS = """
import json, logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per S3 request
from goldgate.cloudflare.d1_standin import D1StandIn
s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s3.start()
with D1StandIn(sys.argv[1], export_polls=1, import_polls=int(sys.argv[2])) as d1:
    print(json.dumps({"api_base": d1.api_base, "account_id": d1.account_id,
                      "s3": "http://%s:%s" % s3.get_host_and_port()}), flush=True)
    sys.stdin.read()
s3.stop()
"""

# Rows are generated in SQL (a recursive CTE) so 100,000 jobs take a fraction of a second.
_JOBS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, runpod_job_id,
                  version, worker_image_tag, gpu_type, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms,
                  cost_estimate_usd, created_at, created_at_ms, updated_at, finished_at, results_json)
SELECT printf('job-%07d', i), :stack, 'sdxl-txt2img', 'sdxl-txt2img@1.0.0',
       '{"prompt": "a lighthouse, it''s dusk\n-- line two"}', printf('%032x', i),
       CASE WHEN i % :fail_every = 0 THEN 'failed' ELSE 'completed' END, printf('rp-%07d', i), 2,
       CASE WHEN i % 2 = 0 THEN :old_tag ELSE :new_tag END, 'NVIDIA GeForce RTX 4090',
       200 + (i * 37) % 5000, 8000 + (i * 101) % 30000, 9000 + (i * 37) % 5000 + (i * 101) % 30000,
       round((8000 + (i * 101) % 30000) / 1000.0 * 0.00031, 8),
       strftime('%Y-%m-%dT%H:%M:%fZ', :start, printf('+%d seconds', i)), 0,
       strftime('%Y-%m-%dT%H:%M:%fZ', :start, printf('+%d seconds', i + 40)),
       strftime('%Y-%m-%dT%H:%M:%fZ', :start, printf('+%d seconds', i + 40)),
       '[{"key": "results/x/0.png", "content_type": "image/png", "bytes": 1234}]'
FROM n
"""
_METRICS = """
INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms,
                         worker_image_tag, workflow_version, gpu_type, cost_estimate_usd, created_at)
SELECT id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, worker_image_tag,
       workflow_version, gpu_type, cost_estimate_usd, created_at FROM jobs
"""
_DELIVERIES = """
INSERT INTO webhook_deliveries (fingerprint, job_id, runpod_job_id, runpod_status, source, applied, outcome,
                                received_at)
SELECT printf('%064x', rowid), id, runpod_job_id, upper(status), 'webhook', 1, 'applied', finished_at
FROM jobs
"""


def build_stack_db(path: Path, jobs: int, stack: str = "staging", fail_every: int = 50,
                   start: str = "2026-11-01T00:00:00Z", tags: tuple[str, str] = (OLD_TAG, NEW_TAG)) -> Path:
    """Jobs alternate between two worker images, `tags` (even, odd): every `fail_every`-th job failed. With an even
    `fail_every` every failure is the first (older) image's; an odd one fails jobs of both."""
    path.parent.mkdir(parents=True, exist_ok=True)
    apply_sqlite(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(_JOBS, {"count": jobs, "stack": stack, "fail_every": fail_every, "old_tag": tags[0],
                             "new_tag": tags[1], "start": start})
        conn.execute(_METRICS)
        conn.execute(_DELIVERIES)
    conn.close()
    return path


def run_sql(db: Path, *statements: str) -> None:
    """Runs `statements` on the stack database `db` in one transaction: a change made by hand, as a mistake makes
    one."""
    conn = sqlite3.connect(db)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


# -- the checklist's polling scan, once per content of the tree -------------------------------------------

_SCANS: dict[tuple[str, str], tuple[str, ...]] = {}


def scan_tree_once(root: Path) -> list[str]:
    """`polling_scan.scan_tree(root)`, run for real once per content of the tree in this process, its result
    handed back for the same content after that. The scan is a pure function of the .py files' paths and
    bytes (it parses them, nothing else), and every checklist run scans the repository's service/, which no
    test here edits: about 0.2 s of CPU a run. The key is every file's path and bytes, so a tree that changed
    is scanned again."""
    root = Path(root)
    if not root.is_dir():
        return real_scan_tree(root)  # what a missing tree says, from the real function every time
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        data = path.read_bytes()
        digest.update(f"{path}\0{len(data)}\0".encode())
        digest.update(data)
    key = (str(root.resolve()), digest.hexdigest())
    if key not in _SCANS:
        _SCANS[key] = tuple(real_scan_tree(root))
    return list(_SCANS[key])


@contextmanager
def migrated_d1(token: str) -> Iterator[tuple[D1StandIn, D1Client, str]]:
    """The D1 stand-in taking `token`, a client of it that never pauses between polls, and the id of a database
    `goldgate-staging` with every migration applied."""
    with D1StandIn(token) as standin:
        api = CloudflareApi(token, standin.api_base)
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        database = d1.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: d1.query(database, sql, params))
        yield standin, d1, database
        api.close()
