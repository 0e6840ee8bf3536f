"""Review 14 (m4): a cloud drill of the stack's own D1 counts whatever case its uuid was typed in."""

from __future__ import annotations

from test_checklist_cloud import Cloud, _drill, _prune, cloud, seed_sql, seeded_image  # noqa: F401 -- the fixtures

from goldgate.ops import checklist


def test_a_drill_of_the_stacks_database_typed_in_upper_case_is_evidence(cloud: Cloud) -> None:  # noqa: F811
    # `goldgate dr-drill --database-id` takes the uuid in either case (wrangler prints it lower-case, the dashboard
    # lets one copy it as typed); the checklist finds the stack's database by name, lower-case. The same database,
    # drilled an hour ago, was "not evidence" and the DR line red.
    _drill(cloud.home, cloud.now, database_id=cloud.database_id.upper())
    line = cloud.results()["dr_drill"]
    assert line.status == checklist.PASS, line.evidence
    # a drill of another database stays no evidence, whatever its case
    other = next(d.uuid for d in cloud.d1.list_databases() if d.name == "goldgate-prod")
    _drill(cloud.home, cloud.now, database_id=other.upper())
    assert cloud.results()["dr_drill"].status == checklist.FAIL
