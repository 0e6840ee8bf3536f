"""Review 30 (loc2): `goldgate demo` from a state home this user cannot write names the way out, `--out DIR`.

A running STAGING is found up from a read-only home (a read-only mount, another user's), but `goldgate demo` saves its
results under <home>/demo-results by default, and failed with "cannot create the results directory ...: Read-only file
system" and no word of what to do. It now says nothing was queued and names `--out DIR`; with it, the demo runs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from read_only_home_support import read_only

from goldgate.commands.local import ensure_up
from goldgate.local.platform import REPO, LocalPlatform


def _demo(prefix: list[str], home: Path, *argv: str) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "goldgate.cli", "demo", *argv, "--home", str(home)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_demo_from_a_read_only_home_names_out_and_runs_with_it(home: Path, tmp_path: Path) -> None:
    platform = LocalPlatform(home)
    out = tmp_path / "results"
    try:
        ensure_up(platform, "staging")
        with read_only(home) as prefix:
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
