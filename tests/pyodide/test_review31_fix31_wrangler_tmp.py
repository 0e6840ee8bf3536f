"""The real-wrangler tests write nothing outside their tmp_path: wrangler's config, logs and caches go under the HOME
they give it, and what it and its miniflare write to the OS temp dir (a `miniflare-<hash>` directory left behind,
the update check's `update-check` cache) under the TMPDIR they give it. Before, each run left those in /tmp."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from test_review30_wr_wrangler_migrations import MIGRATIONS, NODE, WRANGLER, LocalD1, pytestmark  # noqa: F401

# What wrangler, miniflare and the update check name what they put in the OS temp dir.
_THEIRS = ("miniflare-", "update-check", "wrangler", ".wrangler")


def _written(where: Path) -> dict[str, int]:
    """Each of wrangler's entries in `where` (and everything under them) with its mtime: a new one, or one written
    again, shows."""
    seen: dict[str, int] = {}
    for top in where.iterdir():
        if not top.name.startswith(_THEIRS):
            continue
        for path in (top, *top.rglob("*")):
            try:
                seen[str(path)] = path.lstat().st_mtime_ns
            except OSError:
                continue   # gone meanwhile
    return seen


def test_wrangler_writes_nothing_outside_the_tests_tmp_path(tmp_path: Path) -> None:
    d = LocalD1(tmp_path / "project", MIGRATIONS)
    outside = Path(os.environ.get("TMPDIR") or "/tmp")   # where node's os.tmpdir() points without the test's TMPDIR
    before = _written(outside)
    d.apply()
    assert "No migrations to apply" in d.pending()
    # An error: wrangler's error path asks its update check for a newer version.
    failed = subprocess.run([NODE, str(WRANGLER / "bin" / "wrangler.js"), "d1", "execute", "goldgate", "--local",
                             "--persist-to", str(d.state), "--command", "SELEC 1"], cwd=d.root, env=d.env,
                            capture_output=True, text=True, check=False, timeout=180)
    assert failed.returncode != 0, failed.stdout
    after = _written(outside)
    assert {p for p, mtime in after.items() if before.get(p) != mtime} == set(), \
        f"wrangler wrote in {outside}, outside the test's tmp_path"
    assert list((tmp_path / "project" / "tmp").glob("miniflare-*")), "its temp files went elsewhere"
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TMPDIR", "WRANGLER_LOG_PATH", "WRANGLER_CACHE_DIR",
                 "WRANGLER_REGISTRY_PATH"):
        assert Path(d.env[name]).is_relative_to(tmp_path), name
    assert d.env["WRANGLER_SEND_METRICS"] == "false" and d.env["WRANGLER_HIDE_BANNER"] == "true"
