"""Review 30 (env30): `goldgate demo` under umask 000 saved each result image 0666, writable by every user of the
machine, in a results directory goldgate makes 0755 whatever the umask. An image is now saved 0644 less the umask."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = ROOT / "images" / "worker" / "workflows"


def _goldgate(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldgate", *argv], env=env, capture_output=True, text=True,
                          timeout=300, check=False, preexec_fn=lambda: os.umask(0))


def test_demo_under_umask_000_saves_results_no_other_user_can_write(tmp_path: Path) -> None:
    env = {**os.environ, "GOLDGATE_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    out = tmp_path / "results"
    try:
        demo = _goldgate(env, "demo", "--out", str(out))
        assert demo.returncode == 0, demo.stdout + demo.stderr
    finally:
        _goldgate(env, "down", "all")
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert len(modes) == len(list(WORKFLOWS_DIR.glob("*.json"))), modes  # one image per shipped workflow
    assert set(modes.values()) == {"0o644"}, modes
    assert oct(out.stat().st_mode & 0o777) == "0o755"
