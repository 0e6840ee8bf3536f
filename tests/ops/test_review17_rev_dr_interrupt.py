"""Ctrl-C while a backup or a restore waits for the file's sha256 read beside it: the read is stopped, not left
running (before, the thread went on reading the whole file, a backup's already removed copy included, for as long
as the process lived), and no copy is left."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from goldgate.ops import backup as backup_module
from goldgate.ops.backup import file_sha256, load_manifest, restore_backup, take_backup

TEARDOWN = threading.Event()
READING: set[int] = set()  # the threads inside _slow_sha256 now (an interrupted join() may mark one stopped)


def _slow_sha256(path, stop=None):
    """A hash of a file far larger than any here: it ends when asked to (or when the test ends)."""
    READING.add(threading.get_ident())
    try:
        while not (stop is not None and stop.is_set()) and not TEARDOWN.is_set():
            time.sleep(0.01)
        return "" if not TEARDOWN.is_set() else file_sha256(path)
    finally:
        READING.discard(threading.get_ident())


def _readers() -> set[int]:
    return set(READING)


@contextmanager
def _ctrl_c_soon() -> Iterator[None]:
    """A KeyboardInterrupt in the main thread 0.5 s from now, as a Ctrl-C brings it."""
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, interrupt)
    TEARDOWN.clear()
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _no_reader_outlives_the_test() -> Iterator[None]:
    yield
    TEARDOWN.set()  # a reader the code under test left running ends now
    deadline = time.monotonic() + 5
    while READING and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_backup_interrupted_while_its_copy_is_hashed_stops_the_hash(tmp_path, stack_db, monkeypatch) -> None:
    db = stack_db(tmp_path / "db.sqlite", jobs=200)
    monkeypatch.setattr(backup_module, "file_sha256", _slow_sha256)
    with pytest.raises(KeyboardInterrupt), _ctrl_c_soon():
        take_backup(db, tmp_path / "backups", "staging")
    assert _readers() == set()
    assert list((tmp_path / "backups").iterdir()) == []


def test_a_restore_interrupted_while_the_backup_is_hashed_stops_the_hash(tmp_path, stack_db, monkeypatch) -> None:
    backup, _ = take_backup(stack_db(tmp_path / "db.sqlite", jobs=200), tmp_path / "backups", "staging")
    monkeypatch.setattr(backup_module, "file_sha256", _slow_sha256)
    target = tmp_path / "restored.sqlite"
    with pytest.raises(KeyboardInterrupt), _ctrl_c_soon():
        restore_backup(backup, load_manifest(backup), target)
    assert _readers() == set()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("restored")) == []
