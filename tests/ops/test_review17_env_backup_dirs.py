"""Under umask 002 (a shared group) a backup's parent directories were made group-writable: another user of the
group could swap a backup or its manifest for their own. Each directory goldgate makes is now its owner's."""

from __future__ import annotations

import os
from pathlib import Path

from goldgate.ops.backup import private_dir


def test_under_umask_002_a_backups_parent_dirs_are_not_group_writable(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        made = private_dir(tmp_path / "home" / "backups" / "staging")
    finally:
        os.umask(old)
    assert made.stat().st_mode & 0o777 == 0o700
    for parent in (tmp_path / "home", tmp_path / "home" / "backups"):
        assert parent.stat().st_mode & 0o022 == 0, oct(parent.stat().st_mode)
