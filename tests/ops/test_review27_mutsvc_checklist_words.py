"""The checklist's words for people (review 26), where a mutation audit (review 27) changed them and no test noticed:
a long list of names is cut after ten with how many more; a drill step that took no time reads `0.0 s` and a
`true` in place of a duration is not a number; a missing WORKFLOW_VERSION names the stack that lacks it and still
shows the one that has it; a golden report without a mean says why; a failed rollback without an error says so; a
golden report that ran no case says that, not that cases failed; the jobs created are counted largest first."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from goldgate import spec as specs
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, JobFacts, LogFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _facts(**more: object) -> Facts:
    return Facts(stack="staging", now=NOW, **more)


class _Entry:
    def __init__(self, seq: int, kind: str, **data: object) -> None:
        self.seq, self.kind, self.data = seq, kind, data

    def get(self, key: str, default: object = None) -> object:
        return self.data.get(key, default)


def test_a_long_list_of_jobs_names_ten_and_how_many_more() -> None:
    jobs = tuple(f"job-{i}" for i in range(13))
    status, evidence = checklist.trace_fields(_facts(logs=LogFacts(files=1, lines=30, job_ids=13,
                                                                   jobs_missing_trace=jobs)))
    assert status == checklist.FAIL
    assert evidence == f"lines without trace_id for jobs {', '.join(jobs[:10])} and 3 more", evidence


def test_a_drill_step_of_no_time_and_a_duration_that_is_no_number_read_for_people() -> None:
    drill = {"passed": True, "finished_at": (NOW - timedelta(hours=1)).isoformat(), "backup_s": 0,
             "rto_s": 2.0, "rpo_s": True}
    status, evidence = checklist.dr_drill(_facts(drill=drill))
    assert status == checklist.PASS, evidence
    assert "backup 0.0 s, RTO 2.0 s" in evidence, evidence
    assert "RPO 'True' (not a number)" in evidence and "RPO 1.0 s" not in evidence, evidence


def test_a_missing_workflow_version_names_the_stack_and_keeps_the_others() -> None:
    staging, prod = specs.load_local("staging"), specs.load_local("prod")
    status, evidence = checklist.workflow_version_set(_facts(specs={
        "staging": dataclasses.replace(staging, workflow_version=""), "prod": prod}))
    assert status == checklist.FAIL
    assert evidence == f"WORKFLOW_VERSION missing for staging; prod: WORKFLOW_VERSION={prod.workflow_version}"


def test_a_golden_report_without_a_mean_latency_says_why() -> None:
    staging = specs.load_local("staging")
    status, evidence = checklist.golden_latency(_facts(
        specs={"staging": staging}, images={"staging": "img"},
        golden={"image": "img", "latency_s": {"mean": None}, "cases": [{"id": "sdxl", "latency_s": None}]}))
    assert status == checklist.FAIL
    assert evidence.startswith("no mean latency (no case's job reached a final status) (max "), evidence


def test_a_failed_rollback_that_recorded_no_error_says_so() -> None:
    ledger = (_Entry(7, "rollback", phase="outcome", outcome="rollback_failed", image="img-a"),)
    status, evidence = checklist.rollback_smoke(_facts(ledger=ledger))
    assert (status, evidence) == (
        checklist.FAIL, "last rollback (img-a) ended rollback_failed: no error recorded (ledger #7)")


def test_a_golden_report_that_ran_no_case_says_so() -> None:
    status, evidence = checklist.golden_all_pass(_facts(
        images={"staging": "img"}, golden={"image": "img", "passed": False, "cases": [], "failures": []}))
    assert (status, evidence) == (checklist.FAIL, "golden report ran no case")


def test_the_jobs_created_are_counted_largest_first() -> None:
    status, evidence = checklist.queue_create(_facts(jobs=JobFacts(total=9, by_status={
        "completed": 2, "failed": 5, "queued": 2})))
    assert status == checklist.PASS
    assert evidence == "9 jobs created through POST /api/queue/create (5 failed, 2 completed, 2 queued)"
