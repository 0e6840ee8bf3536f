"""Every command a promotion or rollback on the cloud target names as the next step runs on the cloud: it carries
`--target cloud` (without it a copied command acts on the local stacks) and, for the commands that read them
(golden, promote, rollback), the golden paths the promotion was given. Before, `goldgate promote --target cloud`
refused with "run `goldgate golden staging`", and a failed promotion's advice was "`goldgate rollback --to ...` and
`goldgate promote --retry-rejected`": each a command on the local target. The cloud's stacks are the in-process
cloud target over the stand-in job API (test_review13_two_targets_one_ledger's Cloud), driven through the CLI."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from release_support import StandInApi, invoke, render_png, standin_api
from test_promotion_partial_failure import _staging_passes
from test_review13_two_targets_one_ledger import C1, C2, Cloud
from test_review26_fixb_failed_golden_advice import NOW, THR, A, _report

import goldgate.commands.release as release_commands
from goldgate.release import gate
from goldgate.release.cases import GitUnreadable
from goldgate.release.gate import ErrorRate, evaluate
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

B = "local/worker@sha256:" + "b" * 64
# The golden paths each command that reads them must carry: (option, the test's directory for it).
PATH_OPTIONS = ("--cases-dir", "--references-dir", "--reports-dir")


def _named(text: str) -> list[str]:
    """Every goldgate command `text` names in backticks."""
    return re.findall(r"`(goldgate [^`]*)`", text)


def _option(words: list[str], option: str) -> str | None:
    """The value `option` has in a command's words; None when it has none."""
    return words[words.index(option) + 1] if option in words[:-1] else None


def _strings(doc: Any) -> Iterator[str]:
    """Every string in a JSON document."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for value in doc.values():
            yield from _strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _strings(value)


def _assert_on_the_cloud(out: str, paths: GoldenPaths) -> list[str]:
    """The commands the JSON document `out` names: each on the cloud target, and each that reads the golden paths with
    the ones this test gave. Returns them."""
    commands = [c for text in _strings(json.loads(out)) for c in _named(text)]
    for command in commands:
        words = shlex.split(command)
        assert _option(words, "--target") == "cloud", command
        if words[1] in ("golden", "promote", "rollback"):
            for option, given in zip(PATH_OPTIONS, (paths.cases_dir, paths.references_dir, paths.reports_dir),
                                     strict=True):
                assert _option(words, option) == str(given.resolve()), command
    return commands


def _promote(capsys: pytest.CaptureFixture, home: Path, paths: GoldenPaths, *options: str) -> tuple[int, str, str]:
    return invoke(capsys, "promote", "--target", "cloud", "--home", str(home), "--json",
                  "--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                  "--reports-dir", str(paths.reports_dir), *options)


def _broken(workflow: str, inputs: dict) -> list[bytes]:
    """Renders nothing like the references, whatever the image (a fault of PROD's own)."""
    size = int(inputs.get("width", 64)), int(inputs.get("height", 64))
    return [render_png(f"a broken model:{i}", *size) for i in range(int(inputs.get("batch_size", 1)))]


def test_a_cloud_promotions_refusals_and_failures_name_commands_on_the_cloud_target(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=C1)) as api:
        cloud = Cloud(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: cloud)

        # 1. No golden run recorded the report: a golden run in another state dir wrote it.
        release_commands.do_deploy(cloud, ledger, "staging", C1, "test")
        assert run_golden(cloud, "staging", Ledger(tmp_path / "other-home"), paths=paths, poll_s=0.01).passed
        code, out, err = _promote(capsys, home, paths)
        assert code == 1 and "report_recorded" in json.loads(out)["message"], err
        named = _assert_on_the_cloud(out, paths)
        assert any(c.startswith("goldgate golden staging ") for c in named), named

        # 2. The report is for another digest than STAGING runs now.
        _staging_passes(cloud, ledger, paths, C1)
        release_commands.do_deploy(cloud, ledger, "staging", C2, "test")
        code, out, err = _promote(capsys, home, paths)
        assert code == 1 and "report_digest" in json.loads(out)["message"], err
        assert any(c.startswith("goldgate golden staging ") for c in _assert_on_the_cloud(out, paths)), out

        # 3. C1 released; C2 passes on STAGING, then PROD's smoke run fails on it, and the automatic rollback's on C1.
        release_commands.do_deploy(cloud, ledger, "staging", C1, "test")
        assert run_golden(cloud, "staging", ledger, paths=paths, poll_s=0.01).passed
        code, out, err = _promote(capsys, home, paths)
        assert code == 0 and cloud.pins["prod"] == C1, err
        _staging_passes(cloud, ledger, paths, C2)
        api.renders = _broken
        code, out, err = _promote(capsys, home, paths)
        assert code == 1 and json.loads(out)["outcome"] == "smoke_failed", err
        named = _assert_on_the_cloud(out, paths)
        assert any(c.startswith(f"goldgate rollback --to {C1} ") for c in named), named
        assert any(c.startswith("goldgate promote --retry-rejected ") for c in named), named
        assert "goldgate status" not in out, out   # it shows the local stacks only

        # 4. The operator's rollback fails the same way; one to a release never verified is refused.
        code, out, err = invoke(capsys, "rollback", "--target", "cloud", "--home", str(home), "--json", "--to", C1,
                                "--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
                                "--reports-dir", str(paths.reports_dir))
        assert code == 1, err
        named = _assert_on_the_cloud(out, paths)
        assert any(c.startswith(f"goldgate rollback --to {C1} ") for c in named), named
        assert "goldgate history --target cloud" in named, named
        code, out, err = invoke(capsys, "rollback", "--target", "cloud", "--home", str(home), "--json", "--to", B)
        assert code == 1 and "goldgate history --target cloud" in _named(json.loads(out)["error"]["message"]), out


# One report and one set of gate inputs per way a condition fails with a command in its advice.
_SCENARIOS: list[dict[str, Any]] = [
    # A failed run (the image's fault), STAGING on another image than the report and the approval, and every other
    # condition failing too.
    {"report": _report(references_updated=True, finished_at=None, references={"sha256": {}}, cases=[]),
     "staging_image": B, "expected_image": B, "error_rate": ErrorRate(10, 3, "t"), "recorded": None,
     "workflow_versions": {"staging": "2026.12.0", "prod": "2026.12.0"},
     "rejected_by": {"kind": "promotion", "stack": "prod", "seq": 9}, "ledger_keyed": True,
     "unconfirmed_deploy": {"after": A, "seq": 5}, "suite": ["square", "batch"],
     "references": {"square.png": None}, "references_dir": "scripts/golden-tests/references/cloud"},
    # A run of the cases --case named; no STAGING jobs at all; a report from before references were recorded.
    {"report": _report(only_cases=["square"]), "error_rate": ErrorRate(0, 0, "t"), "references": {"a.png": "1"}},
    # A run that failed for want of a case for a workflow STAGING serves (the suite's fault, not the image's).
    {"report": _report(workflows={"served": ["wf-a", "wf-z"], "uncovered": ["wf-z"]}, failures=["coverage: wf-z"])},
    # A run that could not read the workflows STAGING serves.
    {"report": _report(workflows={"error": "GET /api/workflows: 502"})},
    # The recorded run did not record its cases, and a later run superseded it.
    {"report": _report(passed=True, failures=[]), "definitions": {"square": "1"}, "superseded_by": {"seq": 8},
     "recorded": {"kind": "golden", "seq": 7, "stack": "staging", "image": A, "suite": "full", "passed": True}},
    # The recorded run missed a case of the suite.
    {"report": _report(passed=True, failures=[]), "definitions": {"square": "1", "batch": "2"},
     "recorded": {"kind": "golden", "seq": 7, "stack": "staging", "image": A, "suite": "full", "passed": True,
                  "suite_cases": {"batch": "2"}}},
    # References git does not hold as committed, or git will not read.
    {"report": _report(references={"sha256": {"a.png": "1"}}), "references": {"a.png": "1"},
     "references_dir": "scripts/golden-tests/references/cloud",
     "references_git": lambda _where, _names: {"a.png": "untracked"}},
    {"report": _report(references={"sha256": {"a.png": "1"}}), "references": {"a.png": "1"},
     "references_dir": "scripts/golden-tests/references/cloud",
     "references_git": lambda _where, _names: (_ for _ in ()).throw(GitUnreadable("git refused the checkout"))},
]

# Each condition whose failure names a command: every one of them must be covered above.
_ADVISING = {"report_passed", "report_workflows_covered", "report_cases", "report_references_match",
             "report_digest", "expected_image", "report_recorded", "staging_rollout", "report_authenticated",
             "report_references", "prod_verdict", "report_workflow_version", "report_fresh", "error_rate"}


def _failed(scenario: dict[str, Any], commands: gate.Commands | None) -> dict[str, str]:
    given = dict(scenario)
    report, staging = given.pop("report"), given.pop("staging_image", A)
    rate = given.pop("error_rate", ErrorRate(10, 0, "t"))
    extra = {} if commands is None else {"commands": commands}
    decision = evaluate(report, staging, THR, rate, now=NOW, **given, **extra)
    return {c.name: c.detail for c in decision.conditions if not c.passed}


def test_every_command_a_failed_condition_names_carries_the_target_and_paths_the_gate_is_given() -> None:
    # The report is a local one: the commands go to the target the promotion acts on, which the caller names.
    cloud = gate.Commands("cloud", cases_dir="my cases", references_dir=None, reports_dir="/tmp/reports")
    advising: set[str] = set()
    for scenario in _SCENARIOS:
        for name, detail in _failed(scenario, cloud).items():
            for command in _named(detail):
                advising.add(name)
                words = shlex.split(command)
                assert _option(words, "--target") == "cloud", f"{name}: {detail}"
                if words[1] in ("golden", "promote"):
                    assert _option(words, "--cases-dir") == "my cases", f"{name}: {detail}"
                    assert _option(words, "--reports-dir") == "/tmp/reports", f"{name}: {detail}"
    assert advising == _ADVISING, _ADVISING - advising


def test_the_local_targets_commands_name_no_target_and_no_paths() -> None:
    local = gate.Commands("local", cases_dir="my cases", reports_dir="/tmp/reports")
    for scenario in _SCENARIOS:
        for given in (local, None):
            for name, detail in _failed(scenario, given).items():
                assert "--target" not in detail and "--cases-dir" not in detail, f"{name}: {detail}"
