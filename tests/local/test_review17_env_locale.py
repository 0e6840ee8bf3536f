"""The local target on machines unlike ours: a state home with a non-ASCII name under a locale whose file
system encoding is not UTF-8 (LC_ALL=C with PYTHONUTF8=0, a Latin-1 locale), a home made under umask 002, a
link planted at the image store's build lock, and a home too long for SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_policy import needs
from processes import kill_everything_naming

import goldgate
from goldgate.errors import StateError
from goldgate.local.image_store import build_local_image
from goldgate.local.platform import LocalPlatform, _check_writable
from goldgate.local.state import StackDir

REPO = Path(goldgate.__file__).resolve().parents[1]
# What a process of this user sees when its locale does not say UTF-8 and UTF-8 mode is off: file names are
# ASCII, each byte past it a lone surrogate (os.fsdecode). LC_ALL=C alone turns UTF-8 mode on (PEP 540).
ASCII_LOCALE = {"LC_ALL": "C", "PYTHONUTF8": "0"}

# How `goldgate status`, `down` and `up` tell the stack's processes: from their command lines in /proc.
LOOK = """
import sys
from pathlib import Path
from goldgate.local.platform import LocalPlatform
assert sys.getfilesystemencoding() == "ascii", sys.getfilesystemencoding()
home, other = Path(sys.argv[1]), Path(sys.argv[2])
print(LocalPlatform(home).host_pid("staging"), LocalPlatform(home).leftovers("staging"),
      LocalPlatform(other).leftovers("staging"))
"""


def _sleeper(*argv: str) -> subprocess.Popen:
    """A process whose command line reads as a stack's process (python -m <module> --flag value ...)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


@needs(Path("/proc/self/cmdline").is_file(), "/proc (goldgate tells a stack's processes by their argv)")
def test_a_stacks_processes_are_told_in_a_non_ascii_home_under_an_ascii_locale(
        tmp_path: Path, processes: list[subprocess.Popen]) -> None:
    # Before, each command line was decoded as UTF-8 and compared with the home as this process names it:
    # under an ASCII locale `goldgate status` and `down` failed with UnicodeEncodeError, and so did every `up`
    # on a machine where any other goldgate home had such a name (`up` looks at every process for leftovers).
    home = tmp_path / "gg hømé 家"
    processes.append(_sleeper("-m", "goldgate.local.stackhost", "--stack", "staging", "--home", str(home)))
    host = processes[-1].pid
    # a service whose host is gone (it was started under another host): a leftover `up` must stop
    processes.append(_sleeper("-m", "goldgate.local.lifeline", "service.local_server", "--config",
                              str(home / "stacks" / "staging" / "service.json")))
    leftover = processes[-1].pid
    StackDir(home, "staging").root.mkdir(parents=True)
    (home / "stacks" / "staging" / "state.json").write_text(json.dumps({"pid": host, "status": "ready"}))
    other = tmp_path / "plain-home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))},
           **ASCII_LOCALE, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", LOOK, str(home), str(other)], env=env, capture_output=True,
                         text=True, encoding="utf-8", errors="replace", timeout=60, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split(maxsplit=1)[0] == str(host)
    assert out.stdout.strip() == f"{host} [{leftover}] []"


@pytest.fixture
def umask_002() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def test_under_umask_002_a_new_home_and_its_stacks_dir_are_not_group_writable(tmp_path: Path,
                                                                             umask_002: None) -> None:
    # Before, the home and stacks/ came out 0775: anyone in the group could swap a stack's dir for theirs
    # (its service config, its pin) while its owner's was 0700.
    home = tmp_path / "home"
    d = StackDir(home, "staging")
    d.ensure()
    ref = build_local_image(REPO / "images" / "worker", home)
    assert ref.startswith("local/worker@sha256:")
    modes = {p.name: p.stat().st_mode & 0o777 for p in (home, home / "stacks", home / "images", d.root)}
    assert modes == {"home": 0o755, "stacks": 0o755, "images": 0o755, "staging": 0o700}


def test_a_link_at_the_image_stores_build_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "images").mkdir(parents=True)
    victim = tmp_path / "profile"
    victim.write_text("export PATH=$HOME/bin:$PATH\n")
    (home / "images" / ".lock").symlink_to(victim)
    with pytest.raises(StateError, match=r"\.lock is a symbolic link \(to .*profile\), not a regular file: "
                                         r"goldgate keeps the image store's build lock there"):
        build_local_image(REPO / "images" / "worker", home)
    assert victim.read_text() == "export PATH=$HOME/bin:$PATH\n"


def test_a_home_that_is_a_link_to_another_disk_builds_and_keeps_its_stacks(tmp_path: Path) -> None:
    disk = tmp_path / "disk 2" / "goldgate"
    disk.mkdir(parents=True)
    home = tmp_path / ".goldgate"
    home.symlink_to(disk, target_is_directory=True)
    StackDir(home, "staging").ensure()
    build_local_image(REPO / "images" / "worker", home)
    assert (disk / "stacks" / "staging" / "secrets" / "api_token").is_file()
    assert len(list((disk / "images").iterdir())) == 2   # .lock and the snapshot


def test_state_files_of_a_non_ascii_home_are_written_and_read_back(tmp_path: Path) -> None:
    d = StackDir(tmp_path / "My Home" / "élan 工作", "staging")
    d.ensure()
    assert len(d.secret("api_token")) == 64
    (d.root / "state.json").mkdir()
    with pytest.raises(StateError, match="state.json is a directory"):   # still refused by name there
        d.read_state()


def test_a_home_too_long_for_sqlite_is_refused_by_up_before_anything_starts(tmp_path: Path) -> None:
    # Before, the host died with "OperationalError: unable to open database file", naming no path, no limit.
    home = tmp_path.joinpath(*["a-very-long-directory-name-for-the-goldgate-state-home"] * 9)
    home.mkdir(parents=True)
    try:
        with pytest.raises(StateError) as caught:
            LocalPlatform(home).up("staging", timeout_s=30)
    finally:
        kill_everything_naming(str(home))   # a host it should not have started
    said = str(caught.value)
    assert said.startswith("cannot start stack staging: SQLite opens no database whose path is over 504 "
                           "bytes")
    assert "set GOLDGATE_HOME to a directory whose path is at least" in said
    assert not (home / "stacks" / "staging" / "state.json").exists()


def test_a_home_of_some_length_and_every_kind_of_character_is_not_refused(tmp_path: Path) -> None:
    home = tmp_path / "My Home" / ("élan 工作 " * 12).strip()   # past AF_UNIX's 108 bytes, within SQLite's
    d = StackDir(home, "staging")
    d.ensure()
    assert len(os.fsencode(d.db_path)) > 200
    _check_writable("staging", d)
