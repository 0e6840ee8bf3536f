"""Review 30 (loc2): `goldgate demo` from a state home this user cannot write names the way out, `--out DIR`.

A running STAGING is found up from a read-only home (a read-only mount, another user's), but `goldgate demo` saves its
results under <home>/demo-results by default, and failed with "cannot create the results directory ...: Read-only file
system" and no word of what to do. It now says nothing was queued and names `--out DIR`; with it, the demo runs."""

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


def _demo(prefix: list[str], home: Path, *argv: str) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "goldgate.cli", "demo", *argv, "--home", str(home)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_demo_from_a_read_only_home_names_out_and_runs_with_it(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    out = tmp_path / "results"
    try:
        ensure_up(platform, "staging")
        with _read_only(home) as prefix:
            refused = _demo(prefix, home)
            assert refused.returncode == 1, f"{shlex.join(prefix)}: {refused.stdout}{refused.stderr}"
            error = refused.stderr.strip().splitlines()[-1]
            assert error.startswith(f"goldgate: error: cannot create the results directory {home / 'demo-results'}: "),\
                error
            # before: the line ended at the OS's reason ("Read-only file system"), with no way out named
            assert error.endswith("nothing was queued: save the result images elsewhere with `--out DIR` (a directory "
                                  "you can write)"), error
            done = _demo(prefix, home, "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["all_completed"] and summary["results_dir"] == str(out), summary
        assert all(Path(f).parent == out and Path(f).stat().st_size > 0 for job in summary["jobs"] for f in job["files"])
        assert not (home / "demo-results").exists()
    finally:
        platform.down("staging")
