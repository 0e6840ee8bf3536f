"""`node scripts/golden-tests/run.mjs` (the checklist's way to run the golden tests) right after the README's setup,
which installs goldgate in the checkout's .venv without activating it: the shim runs that goldgate instead of failing
with `spawn goldgate ENOENT` and advice to install what is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ci_policy import require

RUN_MJS = Path(__file__).resolve().parents[2] / "scripts" / "golden-tests" / "run.mjs"


def _checkout(root: Path, with_venv: bool) -> Path:
    """run.mjs where it lives in a checkout; with a .venv/bin/goldgate that says how it was called and exits 3."""
    shim = root / "scripts" / "golden-tests" / "run.mjs"
    shim.parent.mkdir(parents=True)
    shutil.copy(RUN_MJS, shim)
    if with_venv:
        goldgate = root / ".venv" / "bin" / "goldgate"
        goldgate.parent.mkdir(parents=True)
        goldgate.write_text('#!/bin/sh\necho "checkout goldgate: $*"\nexit 3\n')
        goldgate.chmod(0o755)
    return shim


def _run(node: str, shim: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # PATH holds node and nothing named goldgate: a shell that never activated the venv.
    bare = tmp_path / "path"
    bare.mkdir()
    (bare / "node").symlink_to(node)
    return subprocess.run([str(bare / "node"), str(shim), "staging", "--concurrency", "2"], capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path,
                          env={"PATH": f"{bare}:/bin:/usr/bin", "HOME": str(tmp_path)})


def test_run_mjs_runs_the_checkouts_goldgate_when_none_is_on_path(tmp_path: Path) -> None:
    node = shutil.which("node")
    require(node is not None, "node (for scripts/golden-tests/run.mjs)")
    require(not any((Path(d) / "goldgate").exists() for d in ("/bin", "/usr/bin")), "a PATH without goldgate")
    proc = _run(node, _checkout(tmp_path / "repo", with_venv=True), tmp_path)
    assert proc.stdout == "checkout goldgate: golden staging --concurrency 2\n", proc.stderr
    assert proc.returncode == 3   # goldgate's own status, passed on


def test_run_mjs_without_any_goldgate_says_how_to_set_it_up(tmp_path: Path) -> None:
    node = shutil.which("node")
    require(node is not None, "node (for scripts/golden-tests/run.mjs)")
    require(not any((Path(d) / "goldgate").exists() for d in ("/bin", "/usr/bin")), "a PATH without goldgate")
    proc = _run(node, _checkout(tmp_path / "repo", with_venv=False), tmp_path)
    assert proc.returncode == 127
    assert proc.stderr == ("run.mjs: cannot run goldgate: spawn goldgate ENOENT (set goldgate up in this checkout: "
                           "python3 -m venv .venv && .venv/bin/pip install -e . -- or name it with GOLDGATE_BIN)\n")
