"""A backup's manifest was written in place and never fsynced: after a power cut soon after a backup, it could come
back empty, and the newest backup (the one a restore needs) was then refused for want of a readable manifest. It is
now renamed into place whole, once on disk, and the rename (the backup copy's too, in the same directory) is made
durable before the command goes on. Short of cutting the power, the order of the calls shows it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from goldgate.ops.backup import manifest_path, take_backup


def _database(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT)")
    conn.execute("INSERT INTO jobs VALUES ('j1', 'completed')")
    conn.commit()
    conn.close()
    return path


def test_the_manifest_is_whole_and_on_disk_before_the_backup_is_reported(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    source = _database(tmp_path / "d1.sqlite")
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    backup, manifest = take_backup(source, tmp_path / "backups", "staging")

    target = manifest_path(backup)
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(target)]
    assert renames, f"the manifest was written in place (a power cut could leave it empty): {events}"
    at = renames[-1]
    assert ("fsync", events[at][1]) in events[:at], f"the manifest's data was not on disk before its rename: {events}"
    assert ("fsync", str(target.parent)) in events[at + 1:], "the manifest's rename was not made durable"
    copied = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(backup)]
    assert copied and copied[-1] < at, "the backup copy was renamed into place after its manifest"

    assert json.loads(target.read_text())["sha256"] == manifest.sha256
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # a manifest names the source; owner only, as before
