"""Review 30 (plat): `goldgate up` of a stack that runs, from a state home this user cannot write.

With the home mounted read-only (or another user's), `goldgate up staging` of a running STAGING failed with "Read-only
file system (.../stacks/staging/up.lock)", and `goldgate demo` with it: `up` opened its lock file for writing to take
it. A running stack is now found up (a flock needs no write access), and `up --json` reads its URL as the README's
recipe does; a stack that is down is not started there, in words that say why and what to do."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ci_policy import require

from goldgate.commands.local import ensure_up
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir

_MOUNT_RO = 'mount --make-rprivate / && mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'


@contextmanager
def _read_only(home: Path) -> Iterator[list[str]]:
    """The command prefix that runs a command with `home` read-only to it: as root, a read-only bind mount in a mount
    namespace of its own (a mode bit stops no root); else the stack's dir and lock files without write permission,
    as a home of another user's is."""
    if os.geteuid() == 0:
        usable = shutil.which("unshare") is not None and subprocess.run(
            ["unshare", "-m", "sh", "-c", _MOUNT_RO, "sh", str(home), "true"], check=False,
            capture_output=True, timeout=30).returncode == 0
        require(usable, "unshare -m and mount (a read-only bind mount, for root)")
        yield ["unshare", "-m", "sh", "-c", _MOUNT_RO, "sh", str(home)]
        return
    d = StackDir(home, "staging")
    locked = [p for p in (d.root, d.up_lock_file) if p.exists()]
    modes = {p: p.stat().st_mode & 0o7777 for p in locked}
    for p in locked:
        p.chmod(modes[p] & ~0o222)
    try:
        yield []
    finally:
        for p in locked:
            p.chmod(modes[p])


def _goldgate(prefix: list[str], home: Path, *argv: str) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "goldgate.cli", *argv, "--home", str(home)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=180, cwd=REPO)


def test_up_of_a_running_stack_from_a_read_only_home_finds_it_up(home: Path) -> None:
    platform = LocalPlatform(home)
    try:
        running = ensure_up(platform, "staging")
        with _read_only(home) as prefix:
            done = _goldgate(prefix, home, "up", "staging", "--json")
            assert done.returncode == 0, f"{shlex.join(prefix)}: {done.stderr}"
            assert json.loads(done.stdout)["api_url"] == running.api_url, done.stdout
            assert "staging: already up" in done.stderr, done.stderr
            assert "Read-only file system" not in done.stderr, done.stderr
        platform.down("staging")
        with _read_only(home) as prefix:
            done = _goldgate(prefix, home, "up", "staging")
        assert done.returncode == 1, done
        error = done.stderr.strip().splitlines()[-1]
        state_dir = StackDir(home, "staging").root
        assert error.startswith(f"goldgate: error: cannot start stack staging: its state dir {state_dir} is "), error
        assert ("on a read-only file system." in error) if prefix else ("not writable by this user." in error), error
        assert error.endswith("Make the home writable, or set --home or GOLDGATE_HOME to a writable one, then run "
                              "`goldgate up staging` again"), error
        assert not platform.status("staging").running
    finally:
        platform.down("staging")
