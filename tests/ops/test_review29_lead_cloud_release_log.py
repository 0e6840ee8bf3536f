"""Review 29 (lead): the cloud checklist's "Logging schema v1" line judges the release commands' own log
(<home>/logs/release.jsonl, which `goldgate deploy/golden/promote --target cloud` write) with the exported lines of
--logs-dir, as the local checklist does: a line there off the schema turns the line red, naming the file."""

from __future__ import annotations

from test_checklist_cloud import cloud, seed_sql, seeded_image  # noqa: F401 -- the fixtures: a healthy cloud pair

from goldgate.ops import checklist
from goldgate.release.ledger import RELEASE_LOG


def test_a_release_log_line_off_the_schema_turns_the_cloud_logging_line_red(cloud):  # noqa: F811
    assert cloud.results()["logs_schema_v1"].status == checklist.PASS
    release_log = cloud.home / RELEASE_LOG
    release_log.parent.mkdir(parents=True, exist_ok=True)
    with release_log.open("a", encoding="utf-8") as f:
        f.write('{"event": "release.deployed", "not": "the v1 schema"}\n')
    result = cloud.results()["logs_schema_v1"]
    assert result.status == checklist.FAIL and str(release_log) in result.evidence, result.evidence
