"""Game day, "A failed promotion" then its recovery by the runbook: PROD itself was faulty (every job failed, whatever
the image), so the promotion's smoke failed and the automatic rollback's too; the fault fixed, `goldgate rollback
--to <earlier>` and `goldgate promote --retry-rejected` put the new digest back, and its smoke passed. `goldgate
checklist prod` stayed NOT READY for that digest ("error rate 33%", the cold-start line red) until a new build was
promoted: its lines counted every job the image ever ran on PROD, the ones PROD failed while faulty included. They
now count the image's jobs since the ledger change that last put it there, and say since when.

The ledger is written by the ledger itself and the jobs are the service's own tables (migrations applied), in the
order the game day ran them; no stack runs (`--offline`)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.migrations import apply_sqlite
from goldgate.ops.checklist_facts import read_job_facts, serving_window
from goldgate.release.ledger import Ledger

EARLIER = "local/worker@sha256:" + "a" * 64
NEW = "local/worker@sha256:" + "b" * 64
FAULT = "emulated failure injected by faults.failed_rate (RunPod emulator chaos drill)"
JOB_LINES = ("cold_start", "error_rate", "all_jobs_images", "mean_latency", "size_content_type")


class Prod:
    """PROD's database and the ledger, written in the order things happened."""

    def __init__(self, home: Path) -> None:
        self.ledger = Ledger(home)
        self.db = LocalPlatform(home).db_path("prod")
        self.db.parent.mkdir(parents=True, exist_ok=True)
        apply_sqlite(self.db)
        self.n = 0

    def record(self, kind: str, **fields: object) -> int:
        time.sleep(0.005)  # each job and entry at its own millisecond, as on a real stack
        return self.ledger.append(kind, target="local", **fields).seq

    def job(self, image: str, failed: bool = False) -> None:
        time.sleep(0.005)
        self.n += 1
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        status = "failed" if failed else "completed"
        results = None if failed else json.dumps([{"key": f"results/j{self.n}/0.png", "content_type": "image/png",
                                                   "bytes": 1234}])
        conn = sqlite3.connect(self.db)
        with conn:
            conn.execute(
                "INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                "runpod_job_id, version, worker_image_tag, runpod_queue_duration_ms, runpod_run_duration_ms, e2e_ms, "
                "created_at, created_at_ms, updated_at, finished_at, results_json, error) "
                "VALUES (?, 'prod', 'sdxl-txt2img', '2026.11.0', '{}', ?, ?, ?, 2, ?, 100, 2000, 2400, ?, 0, ?, ?, ?, ?)",
                (f"job-{self.n}", f"{self.n:032x}", status, f"rp-{self.n}", image, now, now, now, results,
                 FAULT if failed else None))
            conn.execute(
                "INSERT INTO job_metrics (job_id, stack, status, runpod_queue_duration_ms, runpod_run_duration_ms, "
                "e2e_ms, worker_image_tag, workflow_version, cost_estimate_usd, created_at) "
                "VALUES (?, 'prod', ?, 100, 2000, 2400, ?, '2026.11.0', 0.0006, ?)", (f"job-{self.n}", status, image, now))
        conn.close()

    def promotion(self, image: str, before: str | None, passed: bool, retry: bool = False) -> int:
        extra = {"retry_rejected": True} if retry else {}
        intent = self.record("promotion", phase="intent", stack="prod", image=image, before=before, **extra)
        self.job(image, failed=not passed)  # its smoke case
        self.record("golden", stack="prod", suite="smoke", image=image, passed=passed)
        if not passed:
            self.rollback(before, image, passed=False, reason=f"automatic: promotion of {image} smoke failed")
        self.record("promotion", phase="outcome", intent_seq=intent, stack="prod", image=image, before=before,
                    after=image if passed else before, pinned=image if passed else before,
                    prod_image=image if passed else None, outcome="promoted" if passed else "smoke_failed")
        return intent

    def rollback(self, image: str | None, before: str, passed: bool, reason: str = "manual") -> int:
        intent = self.record("rollback", phase="intent", stack="prod", image=image, before=before, reason=reason)
        self.job(str(image), failed=not passed)
        self.record("golden", stack="prod", suite="smoke", image=image, passed=passed)
        self.record("rollback", phase="outcome", intent_seq=intent, stack="prod", image=image, before=before,
                    after=image, pinned=image, prod_image=image if passed else None,
                    outcome="rolled_back" if passed else "smoke_failed", reason=reason)
        return intent


def _recovered_prod(home: Path) -> tuple[Prod, int]:
    """The game day's PROD: EARLIER promoted; NEW's promotion on faulty PROD (its smoke and the automatic
    rollback's failed); the fault fixed, `rollback --to EARLIER`, then `promote --retry-rejected` of NEW."""
    prod = Prod(home)
    prod.promotion(EARLIER, None, passed=True)
    prod.job(EARLIER)
    prod.promotion(NEW, EARLIER, passed=False)      # PROD fails every job: NEW's smoke, then EARLIER's
    prod.rollback(EARLIER, EARLIER, passed=True)    # the runbook: `goldgate rollback --to <earlier>`
    retried = prod.promotion(NEW, EARLIER, passed=True, retry=True)  # `goldgate promote --retry-rejected`
    prod.job(NEW)
    StackDir(home, "prod").pin(NEW, reason="test")
    return prod, retried


def _checklist(home: Path, capsys) -> dict[str, dict]:
    capsys.readouterr()
    main(["checklist", "prod", "--offline", "--json", "--home", str(home)])
    return {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_the_checklist_judges_prods_image_since_the_retried_promotion_that_put_it_back(tmp_path, capsys):
    home = tmp_path / "home"
    _, retried = _recovered_prod(home)
    lines = _checklist(home, capsys)
    since = f"since retried promotion #{retried} at "
    for line in JOB_LINES:
        # Before: cold start FAIL (NEW's first job ever failed for the fault), error rate 33.33% over 3 jobs, and
        # "1 of 3 jobs of NEW did not complete": red until a new build was promoted.
        assert lines[line]["status"] == "pass", lines[line]
        assert NEW in lines[line]["evidence"] and since in lines[line]["evidence"], lines[line]
    assert "over 2 jobs of" in lines["error_rate"]["evidence"], lines["error_rate"]
    assert "2 jobs of" in lines["all_jobs_images"]["evidence"], lines["all_jobs_images"]


def test_a_failure_since_the_change_that_put_the_image_there_still_turns_its_lines_red(tmp_path, capsys):
    home = tmp_path / "home"
    prod, retried = _recovered_prod(home)
    prod.job(NEW, failed=True)  # PROD fails NEW's job now: the release it serves
    lines = _checklist(home, capsys)
    assert lines["error_rate"]["status"] == "fail", lines["error_rate"]
    assert f"over 3 jobs of {NEW} since retried promotion #{retried}" in lines["error_rate"]["evidence"]
    assert lines["all_jobs_images"]["status"] == "fail", lines["all_jobs_images"]
    assert "1 of 3 jobs of" in lines["all_jobs_images"]["evidence"]


def test_the_earlier_release_rolled_back_to_is_judged_since_the_rollback_that_verified_it(tmp_path):
    # `rollback --to EARLIER` passed its smoke: EARLIER's failed smoke in the automatic rollback before it is PROD's
    # fault of then. One SQL path: the cloud's D1 reader goes through the same job_facts_from_rows.
    home = tmp_path / "home"
    prod = Prod(home)
    prod.promotion(EARLIER, None, passed=True)
    prod.promotion(NEW, EARLIER, passed=False)
    manual = prod.rollback(EARLIER, EARLIER, passed=True)
    window = serving_window(prod.ledger.entries(), "prod", "prod", EARLIER)
    assert window is not None and window.to_words().startswith(f"since rollback #{manual} at ")
    everything = read_job_facts(prod.db)
    scoped = read_job_facts(prod.db, {EARLIER: window})
    assert everything.by_image_status[EARLIER] == {"completed": 2, "failed": 1}
    assert scoped.by_image_status[EARLIER] == {"completed": 1}
    assert scoped.first_job_by_image[EARLIER]["status"] == "completed"
    assert scoped.metrics_by_image[EARLIER] == {"count": 1, "errors": 0}
    assert scoped.by_image_status[NEW] == everything.by_image_status[NEW]  # an image without a window: every job
