"""The CLI's stdout and stderr as a shell leaves them: closed (`2>&-`) or full (`> /dev/full`). --json output stays
JSON alone on stdout, and a write that fails names stdout, not the state dir. Run as a process: these are the
process's file descriptors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs

from goldgate.local.platform import LocalPlatform

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, stack_db) -> Path:
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    return home


def _goldgate(cwd: Path, *argv: str, close_stderr: bool = False, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              buffered: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if buffered:  # as a user's shell runs it: stdout block-buffered when it is a file
        env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *argv], cwd=cwd, env=env, stdout=stdout,
                          stderr=None if close_stderr else stderr, stdin=subprocess.DEVNULL, text=True,
                          timeout=120, check=False, preexec_fn=(lambda: os.close(2)) if close_stderr else None)


def _reader_gone() -> int:
    """The write end of a pipe whose reader has left, as `2>&1 | head -1` leaves stderr after head's first line."""
    read, write = os.pipe()
    os.close(read)
    return write


def test_json_on_stdout_stays_json_when_stderr_is_closed(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "metrics.html"
    done = _goldgate(tmp_path, "metrics", "staging", "--home", str(home), "--json", "--html", str(page),
                     close_stderr=True)
    assert done.returncode == 0
    assert json.loads(done.stdout)["overall"]["count"] == 20  # no "… wrote metrics.html" mixed in
    assert page.is_file()


def test_an_error_with_stderr_closed_does_not_land_in_stdout(home: Path, tmp_path: Path) -> None:
    done = _goldgate(tmp_path, "metrics", "nope", "--home", str(home), "--json", close_stderr=True)
    assert done.returncode == 1
    assert done.stdout == ""


@needs(os.path.exists("/dev/full"), "/dev/full (a device whose every write fails with ENOSPC)")
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_full_stdout_is_named_in_one_line_not_blamed_on_the_state_dir(home: Path, tmp_path: Path,
                                                                        buffered: bool) -> None:
    with open("/dev/full", "w") as full:
        done = _goldgate(tmp_path, "metrics", "staging", "--home", str(home), "--json", stdout=full,
                         buffered=buffered)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [("goldgate: error: cannot write the output to stdout: No space left on "
                                         "device; check where it is redirected (a full disk?)")]


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_a_prune_whose_stderr_reader_left_still_prunes_and_reports(home: Path, tmp_path: Path,
                                                                   buffered: bool) -> None:
    db = LocalPlatform(home).db_path("staging")
    gone = _reader_gone()
    try:
        done = _goldgate(tmp_path, "prune", "staging", "--home", str(home), "--keep-days", "7", "--json",
                         stderr=gone, buffered=buffered)
    finally:
        os.close(gone)
    assert done.returncode == 0
    assert json.loads(done.stdout)["deleted"]["jobs"] == 20  # the progress line that failed did not stop it
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone() == (0,)
    finally:
        conn.close()


def test_a_failure_is_still_exit_1_when_stderrs_reader_left(home: Path, tmp_path: Path) -> None:
    gone = _reader_gone()
    try:
        done = _goldgate(tmp_path, "metrics", "nope", "--home", str(home), stderr=gone, buffered=True)
    finally:
        os.close(gone)
    assert done.returncode == 1
