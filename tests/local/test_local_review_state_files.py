"""State files under the home replaced by something that is not one (a FIFO, a directory): every command that
reads them answers with one line naming the file, never hangs waiting for a writer that will not come."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs

from goldgate.local.state import StackDir

pytestmark = needs(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 60  # how long a command may take before it is taken to hang (each answers in a second or two)


def _goldgate(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "goldgate.cli", *args], cwd=REPO, capture_output=True,
                              check=False,
                              text=True, timeout=HANG_GUARD_S, stdin=subprocess.DEVNULL,
                              env={**os.environ, "GOLDGATE_HOME": ""})
    except subprocess.TimeoutExpired:
        pytest.fail(f"`goldgate {' '.join(args)}` hung (no answer in {HANG_GUARD_S} s)")


def _one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("goldgate: error:")]
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("record", ["drills/staging/latest-local.json", "prunes/staging/latest-local.json"])
def test_a_fifo_in_place_of_a_drill_or_prune_record_fails_that_check_instead_of_hanging_the_checklist(
        tmp_path: Path, record: str) -> None:
    path = tmp_path / record
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    result = _goldgate("checklist", "staging", "--home", str(tmp_path), "--offline", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result
    assert str(path) in result.stdout and "FIFO" in result.stdout, result.stdout
    assert path.exists(), "the checklist only reads: the file is left for the operator"


def test_a_fifo_in_place_of_state_json_is_one_line_from_status_not_a_hang(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    os.mkfifo(d.state_file)
    _one_line_error(_goldgate("status", "staging", "--home", str(tmp_path)), str(d.state_file), "FIFO")
    _one_line_error(_goldgate("down", "staging", "--home", str(tmp_path)), str(d.state_file), "FIFO")


def test_a_fifo_in_place_of_the_pin_is_one_line_not_a_hang(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "prod")
    d.root.mkdir(parents=True)
    os.mkfifo(d.pin_file)
    _one_line_error(_goldgate("status", "prod", "--home", str(tmp_path)), str(d.pin_file), "FIFO")


def test_a_fifo_in_place_of_a_secret_is_one_line_from_up_not_a_hang(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "prod")
    d.secrets_dir.mkdir(parents=True)
    os.mkfifo(d.secret_file("api_token"))
    _one_line_error(_goldgate("up", "prod", "--home", str(tmp_path)), str(d.secret_file("api_token")), "FIFO")
    assert not d.state_file.exists()


def test_a_fifo_in_place_of_the_host_lock_is_no_host(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "prod")
    d.root.mkdir(parents=True)
    os.mkfifo(d.lock_file)
    result = _goldgate("status", "prod", "--home", str(tmp_path), "--json")
    assert result.returncode == 0, result
    assert '"running": false' in result.stdout
    result = _goldgate("down", "prod", "--home", str(tmp_path))
    assert result.returncode == 0 and "down: prod" in result.stdout, result


def test_status_of_every_stack_shows_the_others_when_one_state_cannot_be_read(tmp_path: Path) -> None:
    d = StackDir(tmp_path, "staging")
    d.root.mkdir(parents=True)
    d.state_file.write_text("{not json")
    done = _goldgate("status", "--home", str(tmp_path))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"staging: unknown: {d.state_file} is corrupt") for line in lines), lines
    assert "prod: down" in lines  # the stack whose state reads is still shown
    assert "Traceback" not in done.stderr
    as_json = _goldgate("status", "--home", str(tmp_path), "--json")
    assert as_json.returncode == 1
    by_stack = {s["stack"]: s for s in json.loads(as_json.stdout)}
    staging, prod = by_stack["staging"], by_stack["prod"]
    assert staging["stack"] == "staging" and staging["running"] is None and "is corrupt" in staging["error"]
    assert prod["stack"] == "prod" and prod["running"] is False
