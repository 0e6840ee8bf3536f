"""Review 28 (goldenfix), the release commands' words:
- the release summary said `golden FAILED: 2 of 2 cases passed` when what failed the run was a workflow no case runs;
- `promote --json` (and `rollback --json`) that failed before the gate printed nothing on stdout, so CI's
  `goldgate promote --json | tee promotion.json` uploaded an empty file: now one JSON document with `"ok": false`;
- `rollback --to` named only "digest, image ref or release id", and `promote --report` a default that is no path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from release_support import StandInApi, invoke, standin_api
from test_review12_forged_rollback_targets import KEY_ENV, keyed_releases
from test_review13_a2_release_summary import UpTarget, _release

import goldgate.commands.release as release_commands
from goldgate.release.verification import GoldenPaths

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_the_release_summary_says_what_failed_a_run_whose_every_case_passed(monkeypatch: pytest.MonkeyPatch,
                                                                            capsys: pytest.CaptureFixture,
                                                                            tmp_path: Path,
                                                                            paths: GoldenPaths) -> None:
    with standin_api(StandInApi(image_tag=A, workflows=["wf-a", "wf-b", "wf-new"])) as api:
        target = UpTarget(api, {})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        code, out, _err = _release(capsys, tmp_path / "home", paths)
    assert code == 1
    [golden] = [line for line in out.splitlines() if line.startswith("golden ")]
    # Before: "golden       FAILED: 2 of 2 cases passed", and nothing on that line said why.
    assert golden == ("golden       FAILED: 2 of 2 cases passed, but the run failed: workflow wf-new: staging serves "
                      "it and no golden case runs it"), golden
    assert "prod" not in target.pins


def _paths_args(paths: GoldenPaths) -> tuple[str, ...]:
    return ("--cases-dir", str(paths.cases_dir), "--references-dir", str(paths.references_dir),
            "--reports-dir", str(paths.reports_dir))


@pytest.mark.parametrize("argv", [("promote",), ("promote", "--check"), ("rollback",), ("rollback", "--to", A)])
def test_promote_and_rollback_json_print_one_document_when_they_fail_before_the_gate(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths,
        argv: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A, B) as target:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        monkeypatch.delenv(KEY_ENV)                  # a signed ledger, its key not set in this job
        code, out, err = invoke(capsys, *argv, "--home", str(home), "--json", *_paths_args(paths))
    assert code == 1 and KEY_ENV in err, err
    # Before: stdout was empty, and `| tee promotion.json` kept a 0-byte file as the run's evidence.
    document = json.loads(out)
    assert document["ok"] is False and set(document["error"]) == {"code", "message"}, document
    assert KEY_ENV in document["error"]["message"] and document["error"]["code"], document
    assert target.pins["prod"] == B


def test_a_refused_promotion_still_prints_its_gate_once(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture, tmp_path: Path,
                                                        paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with keyed_releases(home, paths, monkeypatch, A) as target:
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        target.deploy("staging", B, lambda _m: None)     # no golden run for B: the gate refuses
        code, out, _err = invoke(capsys, "promote", "--home", str(home), "--json", *_paths_args(paths))
    assert code == 1
    document = json.loads(out)                       # one document: the refusal, not an error after it
    assert document["outcome"] == "refused" and document["gate"]["passed"] is False


def _help(capsys: pytest.CaptureFixture, *argv: str) -> str:
    code, out, _err = invoke(capsys, *argv, "--help")
    assert code == 0
    return re.sub(r"-\s+", "-", " ".join(out.split()))   # argparse wraps a line after a hyphen too


def test_the_help_names_what_rollback_to_takes_and_where_promote_reads_its_report(
        capsys: pytest.CaptureFixture) -> None:
    rollback = _help(capsys, "rollback")
    for form in ("release id", "sha256:<64 hex>", "7+ hex", "<repo>@sha256:<64 hex>", "<repo>:<release id>"):
        assert form in rollback, (form, rollback)
    assert "scripts/golden-tests/reports/latest.json" in _help(capsys, "promote")
    golden = _help(capsys, "golden")
    assert "--case CASE_ID" in golden and "--accept-changed CASE_ID" in golden, golden
