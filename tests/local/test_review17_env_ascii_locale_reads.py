"""Under an ASCII locale with UTF-8 mode off (LC_ALL=C PYTHONUTF8=0), a bare read_text() decodes as ASCII:
goldgate's own UTF-8 files must say their encoding. The RunPod emulator's OpenAPI spec holds an em dash, so
`goldgate up` failed at the emulator's start on such a machine."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    assert sys.flags.utf8_mode == 0, "UTF-8 mode is on: the test does not test what it says"
    from goldgate.local.runpod.openapi import SPEC_PATH, spec
    assert not SPEC_PATH.read_bytes().isascii()
    assert spec()["paths"]
    from goldgate.local.image_store import dockerignore_patterns
    ctx = Path(sys.argv[1])
    (ctx / ".dockerignore").write_text("# caf\\u00e9 notes\\n*.tmp\\n", encoding="utf-8")
    assert dockerignore_patterns(ctx) == ["*.tmp"], dockerignore_patterns(ctx)
    from goldgate.local.runpod.config import load_config
    try:
        load_config(ctx / "emulator.json")
    except Exception as exc:
        assert not isinstance(exc, UnicodeDecodeError), repr(exc)
    print("ok")
""")


def test_goldgates_own_utf8_files_are_read_under_an_ascii_locale(tmp_path: Path) -> None:
    (tmp_path / "emulator.json").write_text('{"note": "\\u00e9l\\u00e8ve \u00e9"}', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, capture_output=True, check=False,
                          encoding="utf-8", errors="replace", timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
