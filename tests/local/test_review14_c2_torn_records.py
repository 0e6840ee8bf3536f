"""What a host killed mid-write (or a power cut) leaves in a stack's dir. An empty or corrupt pin.json was refused with
"remove it", which dropped PROD's pin (its next `up` ran no image): the advice now names `goldgate history`, where the
image it held is found, and the commands that pin it again. An empty state.json (a runtime record only) blocked `up`
and `down` until removed by hand: it is a dead host's leftover now, said once and removed. And the temp files of
writes whose writer was killed before its rename are removed by the next `up` or `down`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir


def _goldgate(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", *argv, "--home", str(home)], check=False,
                          capture_output=True, text=True, timeout=180, cwd=REPO)


def test_an_empty_pin_is_refused_with_where_its_image_is_found_not_remove_it(home: Path) -> None:
    d = StackDir(home, "prod")
    d.ensure()
    d.pin_file.write_text("")  # a power cut after the rename, before the data reached the disk
    done = _goldgate(home, "up", "prod")
    assert done.returncode == 1, done
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"goldgate: error: {d.pin_file} is empty: it recorded the image prod runs."), error
    assert "`goldgate history`" in error and "`goldgate rollback --to <ref>` (PROD takes no `goldgate deploy`)" \
        in error, error
    assert "remove it" not in error, error
    assert d.pin_file.exists()  # the record is the operator's to move, with the advice in hand


def test_a_corrupt_pin_gets_the_same_advice(home: Path) -> None:
    d = StackDir(home, "staging")
    d.ensure()
    d.pin_file.write_text('{"image": "local/worker@sha256:')
    done = _goldgate(home, "status", "staging")
    assert done.returncode == 1, done
    assert f"{d.pin_file} is corrupt (" in done.stderr and "`goldgate history`" in done.stderr, done.stderr
    assert "remove it" not in done.stderr, done.stderr


def test_an_empty_state_file_is_a_dead_hosts_leftover_said_once_by_down(home: Path) -> None:
    d = StackDir(home, "staging")
    d.ensure()
    d.state_file.write_text("")
    status = LocalPlatform(home).status("staging")
    assert not status.running and f"left {d.state_file} empty" in (status.ended or ""), status
    first = _goldgate(home, "down", "staging")
    assert first.returncode == 0, first.stderr
    assert f"ignored its state file {d.state_file} (it is empty)" in first.stderr, first.stderr
    assert not d.state_file.exists()
    again = _goldgate(home, "down", "staging")
    assert again.returncode == 0 and "ignored" not in again.stderr, again.stderr


def test_up_starts_a_stack_whose_state_file_is_empty(home: Path) -> None:
    platform = LocalPlatform(home)
    d = StackDir(home, "prod")
    d.ensure()
    d.state_file.write_text("")
    said: list[str] = []
    try:
        assert platform.up("prod", progress=said.append).running
        assert [line for line in said if "ignored its state file" in line and "it is empty" in line], said
    finally:
        platform.down("prod")


def test_down_removes_the_temp_files_of_killed_writers_and_keeps_a_live_writers(home: Path) -> None:
    d = StackDir(home, "staging")
    d.ensure()
    old = [d.root / ".state.json.0123456789ab.tmp", d.root / ".pin.json.ba9876543210.tmp",
           d.secrets_dir / ".api_token.00aa11bb22cc.tmp"]
    young = d.root / ".pin.json.ffffffffffff.tmp"  # a deploy's, renamed in a moment
    other = d.root / ".notes.json.0123456789ab.tmp"  # not goldgate's: left alone
    an_hour_ago = time.time() - 3600
    for path in (*old, young, other):
        path.write_text("{")
    for path in (*old, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    done = _goldgate(home, "down", "staging")
    assert done.returncode == 0, done.stderr
    assert [path.exists() for path in old] == [False, False, False]
    assert young.exists() and other.exists()
