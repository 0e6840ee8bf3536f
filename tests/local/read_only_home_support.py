"""A state home this user cannot write, for a command run in a child: as root a read-only bind mount in a mount
namespace of its own, else the home and the stack's dir and lock file without write permission."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ci_policy import require

from goldgate.local.state import StackDir

_MOUNT_RO = 'mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


@contextmanager
def read_only(home: Path) -> Iterator[list[str]]:
    """The command prefix that runs a command with `home` read-only to it: as root, a read-only bind mount in a mount
    namespace of its own (a mode bit stops no root); else the home, the stack's dir and its lock file without write
    permission, as a home of another user's is."""
    if os.geteuid() == 0:
        usable = shutil.which("unshare") is not None and subprocess.run(
            ["unshare", "-m", "sh", "-c", _MOUNT_RO, "sh", str(home), "true"], check=False,
            capture_output=True, timeout=30).returncode == 0
        require(usable, "unshare -m and mount (a read-only bind mount, for root)")
        yield ["unshare", "-m", "sh", "-c", _MOUNT_RO, "sh", str(home)]
        return
    d = StackDir(home, "staging")
    locked = [p for p in (home, d.root, d.up_lock_file) if p.exists()]
    modes = {p: p.stat().st_mode & 0o7777 for p in locked}
    for p in locked:
        p.chmod(modes[p] & ~0o222)
    try:
        yield []
    finally:
        for p in locked:
            p.chmod(modes[p])
