"""The cloud checklist holds each stack to its own evidence: the daily drill is PROD's backup (STAGING's drill is
a weekly rehearsal, as a local one is), and a worker image that failed its preflight is checked the way a
registry image can be, not with a command that reads only a local stack's snapshot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_checklist_cloud import IMG_B, _drill, cloud, seed_sql, seeded_image  # noqa: F401 -- cloud, seed_sql: pytest fixtures

from goldgate.logs import JsonLogger
from goldgate.ops import checklist

pytestmark = pytest.mark.usefixtures("scan_once")  # checklist runs scan service/ once (conftest.py)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _flat(name: str) -> str:
    return " ".join((DOCS / name).read_text(encoding="utf-8").split())


def test_a_two_day_old_staging_drill_on_the_cloud_is_a_weekly_rehearsal_not_a_late_backup(cloud):  # noqa: F811
    # Before: `goldgate checklist staging --target cloud` went red a day after a weekly STAGING drill, held to
    # the 25 h that only PROD's daily drill (D1's backup) must meet.
    _drill(cloud.home, cloud.now - timedelta(days=2))
    line = cloud.results("staging")["dr_drill"]
    assert line.status == checklist.PASS, line.evidence
    assert "max 168 h" in line.evidence


def test_a_staging_drill_older_than_a_week_is_red_and_says_what_it_is_held_to(cloud):  # noqa: F811
    _drill(cloud.home, cloud.now - timedelta(days=8))
    line = cloud.results("staging")["dr_drill"]
    assert line.status == checklist.FAIL
    assert "more than the 168 h docs/D1_DISASTER_RECOVERY.md allows for a cloud STAGING drill" in line.evidence
    assert line.evidence.endswith("run `goldgate dr-drill staging --target cloud --database-id <uuid>`")


def test_prods_cloud_drill_is_still_the_daily_backup(cloud):  # noqa: F811
    _drill(cloud.home, cloud.now - timedelta(days=2), stack="prod")
    line = cloud.results("prod")["dr_drill"]
    assert line.status == checklist.FAIL
    assert "more than the 25 h docs/D1_DISASTER_RECOVERY.md allows for a cloud PROD drill" in line.evidence
    assert line.evidence.endswith("run `goldgate dr-drill prod --target cloud --database-id <uuid>`")


def test_the_docs_hold_only_prod_on_the_cloud_to_the_daily_drill():
    dr_doc, runbook = _flat("D1_DISASTER_RECOVERY.md"), _flat("RUNBOOK.md")
    assert "`goldgate checklist prod --target cloud` needs a cloud drill within 25 hours" in dr_doc
    assert "every other stack a drill within 7 days (cloud STAGING and a local stack" in dr_doc
    assert "within 25 hours for PROD on `--target cloud`" in runbook
    assert "within 7 days for cloud STAGING and a local stack" in runbook


def test_a_cloud_preflight_failure_names_a_check_that_reads_the_registry_image(cloud):  # noqa: F811
    # Before: "`goldgate doctor --stack staging` names the missing models"; doctor reads only a local stack's
    # image snapshot, so on the cloud it refuses the registry image instead of naming anything.
    with (cloud.logs_dir / "worker.jsonl").open("a") as fh:
        log = JsonLogger("worker", fh, stack="staging", workflow_version="sdxl-txt2img@1.0.0", worker_image_tag=IMG_B)
        log.error("preflight_failed", message="checkpoints/sd_xl_base_1.0.safetensors: missing")
    line = cloud.results("staging")["startup_log"]
    assert line.status == checklist.FAIL
    assert f"`docker run --rm --entrypoint python {IMG_B} -m goldgate_worker.preflight`" in line.evidence
    assert "goldgate doctor" not in line.evidence
