"""A backup or a restore interrupted midway (Ctrl-C, the scheduler stopping the drill) leaves no partial copies."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from goldgate.ops import backup as backup_module
from goldgate.ops.dr import restore_into_stack


def _interrupted(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_a_backup_interrupted_midway_leaves_no_partial_copy_in_the_backups(tmp_path, stack_db, monkeypatch):
    """Interrupted while the source is fingerprinted: each interrupted drill used to leave a `.sqlite.partial` as
    large as the database in <home>/backups/<stack>/, never cleaned up."""
    db = stack_db(tmp_path / "db.sqlite", jobs=200)
    monkeypatch.setattr(backup_module, "fingerprint", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        backup_module.take_backup(db, tmp_path / "backups", "staging")
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == []


class _InterruptedCopy(sqlite3.Connection):
    """The stack's database, whose copy aside is interrupted after a few pages (Ctrl-C during dr-restore)."""

    def backup(self, target, **_kwargs):
        def progress(_status, _remaining, copied):
            if copied >= 3:
                raise KeyboardInterrupt

        super().backup(target, pages=1, progress=progress)


def test_a_restore_interrupted_while_keeping_the_old_database_leaves_it_alone_and_no_half_copy(
        tmp_path, stack_db, monkeypatch):
    """The half-written `db.sqlite.before-restore-<stamp>` used to stay, looking like the kept previous database an
    operator would move back to undo a restore; the staged copy of the backup (as large as it) stayed too."""
    backup, _ = backup_module.take_backup(stack_db(tmp_path / "source.sqlite", jobs=500), tmp_path / "backups",
                                          "staging")
    live = stack_db(tmp_path / "live" / "db.sqlite", jobs=1_000)
    before = live.read_bytes()
    real_connect = sqlite3.connect

    def connect(database, *args, **kwargs):
        if Path(database) == live:
            kwargs["factory"] = _InterruptedCopy
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(KeyboardInterrupt):
        restore_into_stack(backup, live, "staging")
    assert live.read_bytes() == before
    assert sorted(p.name for p in live.parent.iterdir()) == ["db.sqlite"]


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_manifest_that_is_a_fifo_or_a_device_is_refused_instead_of_hanging_the_restore(tmp_path, stack_db, kind):
    """`dr-restore` checks the backup is a file, but read its manifest whatever it was: a FIFO in its place hung the
    restore for good, a link to /dev/zero read until memory ran out."""
    backup, _ = backup_module.take_backup(stack_db(tmp_path / "db.sqlite", jobs=10), tmp_path / "backups", "staging")
    manifest = backup_module.manifest_path(backup)
    manifest.unlink()
    if kind == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.symlink_to("/dev/null")  # a device that ends at once: read, it is "not valid JSON", not a hang
    outcome: list[BaseException] = []

    def restore() -> None:
        try:
            restore_into_stack(backup, tmp_path / "live" / "db.sqlite", "staging")
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    restorer = threading.Thread(target=restore, daemon=True)
    restorer.start()
    restorer.join(30)
    if restorer.is_alive():  # waiting for a writer of the pipe: let it go (a writer that closes at once), then fail
        os.close(os.open(manifest, os.O_WRONLY | os.O_NONBLOCK))
        restorer.join(10)
        pytest.fail(f"the restore waited on the manifest {manifest}")
    assert isinstance(outcome[0], backup_module.BackupRefused) and "is not a file" in str(outcome[0]), outcome
    assert not (tmp_path / "live" / "db.sqlite").exists()
