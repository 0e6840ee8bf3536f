"""Review 30 (plat): `goldgate up` of a stack that runs, from a state home this user cannot write.

With the home mounted read-only (or another user's), `goldgate up staging` of a running STAGING failed with "Read-only
file system (.../stacks/staging/up.lock)", and `goldgate demo` with it: `up` opened its lock file for writing to take
it. A running stack is now found up (a flock needs no write access), and `up --json` reads its URL as the README's
recipe does; a stack that is down is not started there, in words that say why and what to do."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from read_only_home_support import read_only

from goldgate.commands.local import ensure_up
from goldgate.local.platform import REPO, LocalPlatform
from goldgate.local.state import StackDir


def _goldgate(prefix: list[str], home: Path, *argv: str) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "goldgate.cli", *argv, "--home", str(home)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=180, cwd=REPO)


def test_up_of_a_running_stack_from_a_read_only_home_finds_it_up(home: Path) -> None:
    platform = LocalPlatform(home)
    try:
        running = ensure_up(platform, "staging")
        with read_only(home) as prefix:
            done = _goldgate(prefix, home, "up", "staging", "--json")
            assert done.returncode == 0, f"{shlex.join(prefix)}: {done.stderr}"
            assert json.loads(done.stdout)["api_url"] == running.api_url, done.stdout
            assert "staging: already up" in done.stderr, done.stderr
            assert "Read-only file system" not in done.stderr, done.stderr
        platform.down("staging")
        with read_only(home) as prefix:
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
