"""Review 26 (fixb): the checklist's evidence is read by people, and showed Python's values instead: `36 jobs created
... ({'completed': 36})`, `RPO 39.647316 s`, lists in brackets. A typo in `--reports-dir` was blamed on a missing
golden run. The JSON form carries the same words and the same verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.ops import checklist
from goldgate.ops.checklist_facts import Facts, JobFacts, LogFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RAW = ("{", "}", "[", "]", "None", "True", "False")


def _facts(**more: object) -> Facts:
    return Facts(stack="staging", now=NOW, **more)


def _raw(evidence: str) -> list[str]:
    return [token for token in RAW if token in evidence]


def test_the_jobs_created_are_counted_in_words() -> None:
    one = checklist.queue_create(_facts(jobs=JobFacts(total=36, by_status={"completed": 36})))
    assert one == (checklist.PASS, "36 jobs created through POST /api/queue/create (36 completed)")
    mixed = checklist.queue_create(_facts(jobs=JobFacts(total=40, by_status={"failed": 3, "completed": 36,
                                                                             "queued": 1})))
    assert "(36 completed, 3 failed, 1 queued)" in mixed[1] and not _raw(mixed[1]), mixed


def test_the_drill_durations_are_rounded_for_people() -> None:
    drill = {"passed": True, "finished_at": (NOW - timedelta(hours=1)).isoformat(), "backup_s": 0.012345,
             "rto_s": 1.483921, "rpo_s": 39.647316}
    status, evidence = checklist.dr_drill(_facts(drill=drill))
    assert status == checklist.PASS, evidence
    assert "backup 0.012 s, RTO 1.5 s (target 1800 s), RPO 39.6 s" in evidence
    assert "39.647316" not in evidence and "1.483921" not in evidence
    unmeasured = checklist.dr_drill(_facts(drill={**drill, "rpo_s": None, "backup_s": None}))[1]
    assert "backup not measured" in unmeasured and "RPO not measured" in unmeasured and not _raw(unmeasured)


def test_the_failing_lines_name_things_without_python_lists() -> None:
    from goldgate import spec as specs

    staging = specs.load_local("staging")
    lines = {
        "trace_fields": checklist.trace_fields(_facts(logs=LogFacts(
            files=1, lines=9, job_ids=3, jobs_missing_trace=("job-1", "job-2"), jobs_without_context=("job-3",)))),
        "model_paths": checklist.model_paths(_facts(model_roots=("/comfyui/models",))),
        "golden_all_pass": checklist.golden_all_pass(_facts(
            images={"staging": "img"}, golden={"image": "img", "passed": False, "failures": ["a: x", "b: y", "c: z"],
                                               "cases": [{"id": "sdxl", "passed": False}, {"id": "flux",
                                                                                          "passed": True}]})),
        "all_jobs_images": checklist.all_jobs_have_images(_facts(
            jobs=JobFacts(total=2, by_status={"completed": 2}),
            golden={"cases": [{"id": "sdxl", "passed": False, "images": []}]})),
        "golden_latency": checklist.golden_latency(_facts(
            specs={"staging": staging}, images={"staging": "img"},
            golden={"image": "img", "latency_s": {"mean": 1.0},
                    "cases": [{"id": "slow", "latency_s": staging.thresholds.golden_case_latency_s + 1}]})),
    }
    for name, (status, evidence) in lines.items():
        assert status == checklist.FAIL and not _raw(evidence), (name, evidence)
    assert lines["trace_fields"][1] == ("lines without trace_id for jobs job-1, job-2; jobs never logged with "
                                        "trace_id+workflow_version+worker_image_tag: job-3")
    assert "miss /workspace/ComfyUI/models" in lines["model_paths"][1]
    assert lines["golden_all_pass"][1] == ("golden report failed: cases sdxl; a: x; b: y; and 1 more failures in the "
                                           "report")
    assert lines["all_jobs_images"][1] == "golden cases without images: sdxl"
    assert lines["golden_latency"][1].endswith(": slow")


def test_the_json_form_carries_the_same_words_and_verdicts() -> None:
    facts = _facts(jobs=JobFacts(total=36, by_status={"completed": 36}),
                   drill={"passed": True, "finished_at": (NOW - timedelta(hours=1)).isoformat(), "rto_s": 1.48,
                          "rpo_s": 39.647316, "backup_s": 0.5})
    results = checklist.run_checks(facts)
    data = json.loads(json.dumps(checklist.to_json("staging", results)))
    by_id = {c["id"]: c for c in data["checks"]}
    assert by_id["queue_create"]["status"] == "pass" and by_id["dr_drill"]["status"] == "pass"
    assert by_id["queue_create"]["evidence"].endswith("(36 completed)")
    assert by_id["dr_drill"]["evidence"].endswith("RPO 39.6 s")
    assert data["counts"] == {s: sum(1 for r in results if r.status == s) for s in ("pass", "warn", "fail", "n/a")}
    text = checklist.render_text(data)
    for check in data["checks"]:
        assert f"         {check['evidence']}" in text


def test_a_reports_dir_that_does_not_exist_is_named_not_blamed_on_golden(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nonexistent"
    main(["checklist", "staging", "--offline", "--home", str(tmp_path / "home"), "--reports-dir", str(missing),
          "--json"])
    checks = {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    for name in ("golden_against_staging", "golden_report_latest", "golden_latency", "golden_all_pass"):
        assert checks[name]["status"] == "fail"
        assert f"directory {missing} does not exist (check the path given)" in checks[name]["evidence"], checks[name]
        assert "goldgate golden staging` first" not in checks[name]["evidence"]


class _Entry:
    def __init__(self, seq: int, kind: str, **data: object) -> None:
        self.seq, self.kind, self.data = seq, kind, data

    def get(self, key: str, default: object = None) -> object:
        return self.data.get(key, default)


def test_promotions_without_evidence_are_named_by_ledger_number_and_image() -> None:
    ledger = (_Entry(1, "promotion", phase="intent", gate={"passed": False}),
              _Entry(2, "promotion", phase="outcome", outcome="promoted", intent_seq=1, image="img-a"))
    status, evidence = checklist.golden_before_promote(_facts(ledger=ledger))
    assert status == checklist.FAIL and not _raw(evidence), evidence
    assert evidence == ("promotion(s) without a passing gate: ledger #2; image(s) promoted without a passing full "
                        "golden run on STAGING: img-a (a `golden --case` or `--smoke` run is not the suite)")
