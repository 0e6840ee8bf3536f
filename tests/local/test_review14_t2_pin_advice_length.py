"""A corrupt pin.json under a long state home: goldgate cuts an error line past 600 characters in the middle, and
the cut fell on "Move pin.json aside", the one step the advice cannot do without (every command that pins again
reads the pin it replaces). The JSON parser's detail quoted in it was up to 200 characters; now it is short and the
whole advice fits for a home path of 120 characters, even for the longest detail the parser gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.local.platform import REPO
from goldgate.local.state import StackDir


def _long_home(tmp_path: Path) -> Path:
    home = tmp_path / "h"
    home = home.parent / ("h" * (120 - len(str(home)) + 1))
    assert len(str(home)) == 120
    home.mkdir()
    return home


@pytest.mark.parametrize("text", [
    '{' + ' ' * 1_040_000 + '1}',                       # the parser's longest reason, far into the file
    '{"image": "local/worker@sha256:',                  # a torn write
    '[' * 100_000,                                      # nesting too deep to parse
], ids=["longest-reason", "torn", "deep"])
def test_the_corrupt_pin_advice_is_whole_under_a_home_path_of_120_characters(tmp_path: Path, text: str) -> None:
    home = _long_home(tmp_path)
    d = StackDir(home, "staging")
    d.ensure()
    d.pin_file.write_text(text)
    done = subprocess.run([sys.executable, "-m", "goldgate.cli", "status", "staging", "--home", str(home)],
                          check=False, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 1, done
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"goldgate: error: {d.pin_file} is corrupt ("), error
    assert "characters cut" not in error, error
    assert "Move pin.json aside (no command reads past it), then pin that image again with " \
           "`goldgate deploy staging --image <ref>`: " in error, error
    assert error.endswith("`goldgate up staging` first (it starts on the working tree's image)"), error
