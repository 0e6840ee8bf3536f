"""The repository's scripts say what they do in `--help`: their description is the docstring's first paragraph, whole.
It was the docstring's first line, cut mid-sentence ("... the sha256 of every file the index holds for")."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("scripts/lock_worker_requirements.py", "scripts/test_timeline.py", "bench/dr_drill.py",
           "bench/operator_commands.py", "bench/prune.py", "bench/webhook_throughput.py")


def _first_paragraph(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_gives_the_whole_first_paragraph(script):
    path = REPO / script
    wide = {**os.environ, "COLUMNS": "1000"}  # argparse wraps at hyphens too: one line to compare
    out = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=REPO, env=wide, check=True).stdout
    # the description: the paragraph after the usage lines, before "options:"
    description = " ".join(out.split("\n\n")[1].split())
    expected = _first_paragraph(path)
    assert expected.endswith(".") and description == expected, description

