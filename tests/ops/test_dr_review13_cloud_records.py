"""A passed cloud drill deletes its dated drill records older than storage.backup_retention_days (the backups in R2
expire by the bucket's lifecycle rule, not by the drill); the latest record and the local drill's stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_dr_cloud import cloud, r2  # noqa: F401 - the D1 and R2 stand-ins, as fixtures

from goldgate.ops.dr import latest_drill, run_cloud_drill


def _dated(days_ago: int, target: str) -> str:
    return f"{datetime.now(UTC) - timedelta(days=days_ago):%Y%m%dT%H%M%S}.000Z-{target}.json"


def test_a_passed_cloud_drill_deletes_old_dated_records_of_its_target_only(cloud, r2, tmp_path):  # noqa: F811
    _standin, d1, source = cloud
    drills = tmp_path / "drills" / "staging"
    drills.mkdir(parents=True)
    old_cloud, fresh_cloud, old_local = _dated(45, "cloud"), _dated(3, "cloud"), _dated(45, "local")
    for name in (old_cloud, fresh_cloud, old_local, "notes.json"):
        (drills / name).write_text("{}")

    result = run_cloud_drill("staging", d1, source, r2, tmp_path, backup_retention_days=30)

    assert result.passed, result.error
    left = {p.name for p in drills.iterdir()}
    assert old_cloud not in left
    assert {fresh_cloud, old_local, "notes.json", "latest-cloud.json"} <= left
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is True
    # the backup itself stays in R2: its lifecycle rule, not the drill, expires it
    assert len([o for o in r2.list() if o.key.startswith("backups/staging/")]) == 2
