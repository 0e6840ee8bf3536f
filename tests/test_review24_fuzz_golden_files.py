"""The golden files, swept: a case file (scripts/golden-tests/cases/*.yaml) and the golden report the gate reads
(reports/latest.json), each mutated as a hand edit, a hostile edit or a broken disk would (review24_fuzz). A case
loads or is refused with one CaseError naming the file and the field; a report loads or is refused with one
ReportError; and the gate, which documents that it never raises on a malformed report, gives a decision for any
report that loads."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review24_fuzz import as_json, as_yaml, mutated, outcome

from goldgate.release.cases import GOLDEN_DIR, CaseError, GoldenCase, load_case, load_cases
from goldgate.release.gate import GateDecision, evaluate
from goldgate.release.report import ReportError, load_report
from goldgate.spec import Thresholds

CASES = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((GOLDEN_DIR / "cases").glob("*.yaml"))}
REPORT = json.loads((GOLDEN_DIR / "reports" / "latest.json").read_text(encoding="utf-8"))
SWEEP = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SWEEP
@given(st.data(), st.sampled_from(sorted(CASES)))
def test_a_mutated_case_file_loads_or_is_refused_by_name(data: st.DataObject, name: str) -> None:
    doc, steps = data.draw(mutated(CASES[name]))
    text, edit = as_yaml(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / name
        file.write_bytes(text)
        result = outcome(lambda: load_case(file), CaseError)
    if isinstance(result, GoldenCase):
        json.dumps(result.sha256)  # what a golden run records of it: computable for any case that loads
        return
    message = str(result)
    assert str(file) in message and "\n" not in message and len(message) < 1_500, message
    if len(steps) == 1 and edit == "none" and steps[0].op != "raw" and "valid YAML" not in message:
        at = steps[0].named_at()
        if at:  # a value inside `inputs:` or `expect:`: the message names the block, as expect.width or inputs.seed
            assert str(at[0]) in message, (steps, message)


@SWEEP
@given(st.data(), st.sampled_from(sorted(CASES)))
def test_a_suite_with_one_mutated_case_loads_or_is_refused(data: st.DataObject, name: str) -> None:
    doc, _ = data.draw(mutated(CASES[name]))
    text, _ = as_yaml(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        cases_dir = Path(tmp) / "cases"
        shutil.copytree(GOLDEN_DIR / "cases", cases_dir)
        (cases_dir / name).write_bytes(text)
        result = outcome(lambda: load_cases(cases_dir, smoke_only=data.draw(st.booleans()), stack_latency_s=600.0),
                         CaseError)
    if isinstance(result, CaseError):
        assert str(cases_dir) in str(result), result


@settings(SWEEP, max_examples=300)  # each is quick, and the gate reads a score of the report's hundreds of fields
@given(st.data())
def test_a_mutated_report_is_refused_or_judged_by_the_gate_without_an_exception(data: st.DataObject) -> None:
    doc, _ = data.draw(mutated(REPORT, json_only=True))
    text, _ = as_json(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "latest.json"
        file.write_bytes(text)
        report = outcome(lambda: load_report(file), ReportError)
    if isinstance(report, ReportError):
        assert str(file) in str(report) and len(str(report)) < 1_500, report
        return
    finished = datetime.fromisoformat(REPORT["finished_at"])
    decision = evaluate(report, REPORT["image"], Thresholds(), None, now=finished + timedelta(minutes=5),
                        workflow_versions={"staging": REPORT["workflow_version"]},
                        suite=[case["id"] for case in REPORT["cases"]], expected_image=REPORT["image"])
    assert isinstance(decision, GateDecision)
    json.dumps(decision.to_dict())  # what `promote --json` prints and the ledger records


# What the sweep found: an expectation left empty (`min_bytes:`) or null loaded as None where a number is needed, and
# the case failed with TypeError comparing it (min_bytes against max_bytes), or later, in the golden run.
@pytest.mark.parametrize(("key", "bounds"), [("min_bytes", r"\[1, 2147483648\]"), ("max_bytes", r"\[1, 8589934592\]"),
                                             ("images", r"\[1, 64\]"), ("max_hash_distance", r"\[0, 63\]"),
                                             ("max_color_distance", r"\[0, 254\]")])
def test_an_expectation_left_empty_is_refused_by_name(tmp_path: Path, key: str, bounds: str) -> None:
    file = tmp_path / "sdxl-lighthouse.yaml"
    file.write_text(f"workflow: sdxl-txt2img\nexpect:\n  width: 768\n  {key}:\n", encoding="utf-8")
    with pytest.raises(CaseError, match=rf"^{file}: expect\.{key}: expected an integer in {bounds}, got None$"):
        load_case(file)


def test_width_and_height_left_empty_are_still_not_checked(tmp_path: Path) -> None:
    file = tmp_path / "sdxl-lighthouse.yaml"
    file.write_text("workflow: sdxl-txt2img\nexpect: {width: null, height: null}\n", encoding="utf-8")
    assert (load_case(file).expect.width, load_case(file).expect.height) == (None, None)


def test_a_report_path_that_is_a_directory_is_named_so_not_by_a_file_descriptor(tmp_path: Path) -> None:
    from goldgate.release.report import ReportError, read_report

    with pytest.raises(ReportError) as refused:
        read_report(tmp_path)
    message = str(refused.value)
    assert message == (f"{tmp_path} is a directory, not a golden report: name the report file in it, e.g. "
                       f"{tmp_path / 'latest.json'}")
