"""The release path's state files on machines unlike ours: a lock file or ledger another user could link
elsewhere (a home made under umask 002 was group-writable), a home moved to another disk through a link, and a
ledger save whose git output is not UTF-8."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate.errors import StateError
from goldgate.release.ledger import Ledger
from goldgate.release.lock import ReleaseLock, StackLock


def test_a_lock_file_linked_to_another_file_is_refused_and_that_file_is_left_alone(tmp_path: Path) -> None:
    # Under umask 002 the home's locks/ was group-writable: a link planted there made the next golden run
    # truncate the file it named and write its holder JSON into it (any file of the operator's: a key, a
    # shell profile).
    home = tmp_path / "home"
    (home / "locks").mkdir(parents=True)
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA operator\n")
    (home / "locks" / "local-staging.lock").symlink_to(victim)
    with pytest.raises(StateError) as caught, StackLock(home, "local", "staging", "golden", "a golden run"):
        pass
    assert victim.read_text() == "ssh-ed25519 AAAA operator\n"
    said = str(caught.value)
    assert f"local-staging.lock is a symbolic link (to {victim})" in said
    assert "link the whole state dir instead" in said


def test_a_dangling_link_at_the_release_lock_creates_nothing_where_it_points(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    target = tmp_path / "planted"
    (home / "release.lock").symlink_to(target)
    with pytest.raises(StateError, match="release.lock is a symbolic link"), ReleaseLock(home, "promote"):
        pass
    assert not target.exists()


def test_a_ledger_linked_elsewhere_is_refused_by_name(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    other = tmp_path / "notes.txt"
    other.write_text("mine\n")
    (home / "ledger.jsonl").symlink_to(other)
    with pytest.raises(StateError, match=r"ledger.jsonl is a symbolic link .*the release ledger"):
        Ledger(home).append("build", image="x", trigger="t")
    assert other.read_text() == "mine\n"


def test_a_home_that_is_a_link_to_another_disk_keeps_working(tmp_path: Path) -> None:
    disk = tmp_path / "other disk" / "goldgate"
    disk.mkdir(parents=True)
    home = tmp_path / ".goldgate"
    home.symlink_to(disk, target_is_directory=True)
    (disk / "locks").mkdir()
    (tmp_path / "locks elsewhere").mkdir()
    # a directory in the home linked elsewhere is followed too: only the file itself must be goldgate's own
    (disk / "logs").symlink_to(tmp_path / "locks elsewhere", target_is_directory=True)
    with ReleaseLock(home, "promote"), StackLock(home, "local", "staging", "deploy", "a deploy"):
        Ledger(home).append("build", image="x", trigger="t")
    assert [e.seq for e in Ledger(home).entries()] == [1]
    assert (disk / "release.lock").is_file() and (disk / "locks" / "local-staging.lock").is_file()
    assert (tmp_path / "locks elsewhere" / "release.jsonl").is_file()


def test_a_ledger_save_whose_output_is_not_utf8_is_a_warning_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    # git prints a path as its bytes on disk; text=True decoded them strictly, and the UnicodeDecodeError left
    # ledger.append mid-promotion (the save must never stop a PROD change half way).
    monkeypatch.setenv("GOLDGATE_LEDGER_SAVE", r"printf 'error: cannot push r\351sultat\n' >&2; exit 1")
    ledger = Ledger(tmp_path / "home")
    ledger.append("promotion", phase="intent", stack="prod", image="x", trigger="t")
    assert [e.seq for e in ledger.entries()] == [1]
    err = capsys.readouterr().err
    assert "ledger #1 is recorded here but not saved (exit 1: error: cannot push r\ufffdsultat)" in err


def test_release_locks_work_in_a_home_with_spaces_and_non_ascii_names(tmp_path: Path) -> None:
    home = tmp_path / "My Home" / "élan 工作" / ".goldgate"
    busy = "another promotion or rollback is running"
    with ReleaseLock(home, "promote"), pytest.raises(StateError, match=busy), ReleaseLock(home, "x"):
        pass
    assert os.path.isfile(home / "release.lock")


@pytest.fixture
def umask_002() -> Iterator[None]:
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _writable_by_others(root: Path) -> list[str]:
    return sorted(f"{oct(p.stat().st_mode & 0o777)} {p.relative_to(root.parent)}"
                  for p in [root, *root.rglob("*")] if p.is_dir() and p.stat().st_mode & 0o022)


def test_under_umask_002_the_release_path_makes_no_directory_others_can_write_to(tmp_path: Path,
                                                                                umask_002: None) -> None:
    # A group-writable home, locks/ or logs/ lets anyone in the group swap the ledger or a lock for theirs.
    home = tmp_path / "new home" / ".goldgate"
    with ReleaseLock(home, "promote"), StackLock(home, "local", "staging", "golden", "a golden run"):
        Ledger(home).append("golden", stack="staging", image="x", trigger="t")
    assert _writable_by_others(tmp_path / "new home") == []
    assert (home / "locks").stat().st_mode & 0o777 == 0o755   # otherwise as the umask says, as before
    assert (home / "ledger.jsonl").stat().st_mode & 0o777 == 0o644


def test_a_home_its_owner_made_group_writable_is_left_so(tmp_path: Path, umask_002: None) -> None:
    home = tmp_path / "team home"
    home.mkdir(mode=0o775)
    with ReleaseLock(home, "promote"):
        pass
    assert home.stat().st_mode & 0o777 == 0o775
