"""The release commands turn bad input and missing state into one clear line, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import require

from goldgate.cli import main
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64


def run(capsys: pytest.CaptureFixture, home: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("goldgate: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_history_of_a_fresh_home_is_empty_json(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, out, _ = run(capsys, tmp_path, "history", "--json")
    assert code == 0 and json.loads(out) == []


def test_history_lists_entries_and_refuses_a_tampered_ledger(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    Ledger(tmp_path).append("build", image=A, release_id="r1", trigger="user:t")
    Ledger(tmp_path).append("deploy", stack="staging", image=A, before=None, after=A, trigger="user:t")
    code, out, _ = run(capsys, tmp_path, "history", "--json", "--limit", "1")
    assert code == 0 and [e["kind"] for e in json.loads(out)] == ["deploy"]
    code, out, _ = run(capsys, tmp_path, "history")
    assert code == 0 and "hash chain verified" in out
    path = tmp_path / "ledger.jsonl"
    path.write_text(path.read_text().replace('"r1"', '"r2"'))
    code, _, err = run(capsys, tmp_path, "history", "--json")
    assert code == 1 and "entry 1 was edited" in one_error_line(err)


def test_prod_takes_no_direct_deploy_and_no_tag(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "deploy", "prod", "--image", A)
    assert code == 1 and "only through `goldgate promote`" in one_error_line(err)
    with pytest.raises(SystemExit) as exc:  # refused as the arguments are read
        run(capsys, tmp_path, "deploy", "staging", "--image", "local/worker:latest")
    assert exc.value.code == 2 and "it is a tag" in capsys.readouterr().err
    assert not (tmp_path / "ledger.jsonl").exists()


def test_promote_without_a_report_names_the_reports_dir_given(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "promote", "--reports-dir", str(tmp_path / "reports"))
    assert code == 1 and f"directory {tmp_path / 'reports'} does not exist (check the path given)" \
        in one_error_line(err)


@pytest.mark.parametrize("content", ["{truncated", "[1, 2]", '{"schema": "something else"}', "x" * 10])
def test_promote_refuses_a_malformed_report(capsys: pytest.CaptureFixture, tmp_path: Path, content: str) -> None:
    report = tmp_path / "bad.json"
    report.write_text(content)
    code, _, err = run(capsys, tmp_path, "promote", "--report", str(report))
    assert code == 1 and str(report) in one_error_line(err)


def test_rollback_with_no_verified_release_says_so(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "rollback")
    assert code == 1 and "no earlier verified release" in one_error_line(err)
    code, _, err = run(capsys, tmp_path, "rollback", "--to", "sha256:" + "f" * 64)
    assert code == 1 and "no verified release yet" in one_error_line(err)


def test_golden_on_a_stack_that_is_down_or_with_bad_cases(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "golden", "staging")
    assert code == 1 and "staging is not up" in one_error_line(err)
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "x.yaml").write_text("workflow: [oops\n")
    code, _, err = run(capsys, tmp_path, "golden", "staging", "--cases-dir", str(cases))
    assert code == 1 and "x.yaml is not valid YAML" in one_error_line(err)


def test_build_with_a_missing_context_or_no_engine(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(capsys, tmp_path, "build", "--context", str(tmp_path / "missing"))
    assert code == 1 and "is not a directory" in one_error_line(err)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    code, _, err = run(capsys, tmp_path, "build", "--engine", "docker", "--repo", "127.0.0.1:5000/w",
                       "--context", str(tmp_path))
    assert code == 1 and "cannot reach a Docker engine" in one_error_line(err)


@pytest.mark.parametrize("argv", [["build"], ["up", "staging"]])
def test_a_state_dir_that_is_not_a_directory_is_one_line(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                         argv: list[str]) -> None:
    home = tmp_path / "home"
    home.write_text("a file where the state dir should be")
    code, _, err = run(capsys, home, *argv)
    line = one_error_line(err)
    assert code == 1 and "Not a directory" in line and str(home) in line and "GOLDGATE_HOME" in line


@pytest.mark.parametrize("command", ["build", "release"])
def test_the_cloud_target_refuses_a_local_snapshot_before_touching_anything(capsys: pytest.CaptureFixture,
                                                                            tmp_path: Path, command: str) -> None:
    # RunPod cannot pull local/worker@sha256:...; a release would otherwise bring stacks up first.
    code, _, err = run(capsys, tmp_path, command, "--target", "cloud")
    assert code == 1 and "--repo <registry>/<repository>" in one_error_line(err)
    assert not (tmp_path / "ledger.jsonl").exists() and not (tmp_path / "images").exists()


def test_the_checklists_run_mjs_delegates_to_goldgate_golden(tmp_path: Path) -> None:
    node = shutil.which("node")
    require(node is not None, "node (for scripts/golden-tests/run.mjs)")
    repo = Path(__file__).resolve().parents[2]
    bad = tmp_path / "cases"
    bad.mkdir()
    (bad / "x.yaml").write_text("workflow: [oops\n")
    shim = tmp_path / "goldgate"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m goldgate.cli \"$@\"\n")
    shim.chmod(0o755)
    proc = subprocess.run([node, str(repo / "scripts" / "golden-tests" / "run.mjs"), "staging", "--cases-dir",
                           str(bad), "--home", str(tmp_path / "home")], capture_output=True, text=True, timeout=120,
                          check=False, cwd=repo, env={**os.environ, "GOLDGATE_BIN": str(shim)})
    assert proc.returncode == 1
    assert "goldgate: error: " in proc.stderr and "x.yaml is not valid YAML" in proc.stderr


# -- found by following the README and the runbook on a fresh clone --------------------------------

@pytest.mark.parametrize("argv", [
    ["release", "--staging", "staging", "--prod", "staging"],
    ["release", "--staging", "prod"],
    ["release", "--prod", "staging"],
])
def test_release_refuses_stacks_in_the_wrong_roles_before_touching_anything(capsys: pytest.CaptureFixture,
                                                                           tmp_path: Path, argv: list[str]) -> None:
    # Before: `--prod staging` "promoted" to STAGING and printed "PROD now serves ..."; `--staging prod` brought
    # both stacks up and built an image before the deploy refused PROD.
    code, _, err = run(capsys, tmp_path, *argv)
    line = one_error_line(err)
    assert code == 1 and ("PROD" in line or "prod" in line)
    assert not (tmp_path / "ledger.jsonl").exists() and not (tmp_path / "stacks").exists()
    assert not (tmp_path / "images").exists()


def test_history_shows_a_golden_run_as_passed_or_failed(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    # Before: the OUTCOME column of a golden run read `True` / `False`.
    Ledger(tmp_path).append("golden", stack="staging", image=A, passed=True, trigger="user:t")
    Ledger(tmp_path).append("golden", stack="staging", image=A, passed=False, trigger="user:t")
    code, out, _ = run(capsys, tmp_path, "history")
    rows = [ln.split() for ln in out.splitlines()[1:3]]
    assert code == 0 and [r[4] for r in rows] == ["passed", "FAILED"], out
    assert "True" not in out and "False" not in out


def test_the_gate_table_keeps_its_columns_aligned_for_long_condition_names() -> None:
    from goldgate.commands.release import _render_promotion

    conditions = [{"name": n, "passed": True, "detail": "detail"} for n in
                  ("staging_image", "report_workflow_version", "error_rate")]
    lines = _render_promotion({"gate": {"conditions": conditions}, "message": "m"}).splitlines()[1:4]
    assert len({ln.index("ok") for ln in lines}) == 1, lines
    assert len({ln.index("detail") for ln in lines}) == 1, lines


def test_an_empty_value_in_a_text_table_is_a_dash_not_none() -> None:
    # Before: `goldgate demo` printed `None` in the ERROR column of every completed job.
    from goldgate.commands.output import table

    assert "None" not in table([{"job": "j1", "error": None}], ["job", "error"])
