"""custom_nodes.yaml is read by `goldgate build`, the local ComfyUI emulator and the Dockerfile's install step; a bad
file must be a CustomNodesError naming the entry, whatever it holds.

1. An alias bomb: a 600-byte file whose `url` is a YAML list of lists built from anchors (each level ten aliases of the
   one before). safe_load shares the aliased objects, so loading is cheap, but the error message shows the value with
   repr(), which expands every alias: 10^8 strings, gigabytes, and the builder (or CI runner) is out of memory, or the
   build ends in a MemoryError traceback. shown() must cut before it expands (reprlib, or a depth/size-bounded repr).
2. `name` (and `url`, `commit`) are checked with `re.match(...$)`, and `$` also matches before a trailing newline: a
   YAML block or folded scalar (`name: |`) gives "my-node\n", accepted as a folder name under /comfyui/custom_nodes/
   (a folder whose name ends in a newline), and an abbreviated 39-hex sha plus that newline passes as a full commit.
   Use re.fullmatch (or `\\Z`).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from images.worker.custom_nodes import CustomNodesError, parse_custom_nodes

REPO = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _alias_bomb(levels: int) -> str:
    items = ["&l0 [" + ", ".join(["lol"] * 10) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return (f"schema: 1\ncustom_nodes:\n  - name: bomb\n    commit: '{COMMIT}'\n"
            f"    url: [{', '.join(items)}]\n")


def test_an_alias_bomb_in_a_field_is_a_clear_error_not_gigabytes(tmp_path: Path) -> None:
    manifest = tmp_path / "custom_nodes.yaml"
    manifest.write_text(_alias_bomb(8))
    assert manifest.stat().st_size < 1000
    # Run with its address space capped at 768 MB, so a failing run ends in a MemoryError instead of taking the
    # machine's memory.
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (768 << 20, 768 << 20))
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from images.worker.custom_nodes import CustomNodesError, load_custom_nodes
        try:
            load_custom_nodes(Path({str(manifest)!r}))
        except CustomNodesError as exc:
            print("refused:", str(exc)[:300])
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"reading a 552-byte custom_nodes.yaml failed: {done.stderr[-400:]}"
    assert done.stdout.startswith("refused:") and "url" in done.stdout
    assert len(done.stdout) < 2000


@pytest.mark.parametrize("entry", [
    {"name": "my-node\n", "url": "https://example.invalid/org/my-node.git", "commit": COMMIT},
    {"url": "https://example.invalid/org/my-node.git\n", "commit": COMMIT},
    {"name": "my-node", "url": "https://example.invalid/org/my-node.git", "commit": COMMIT[:39] + "\n"},
], ids=["name", "url-and-default-name", "commit"])
def test_a_value_ending_in_a_newline_is_refused(entry: dict) -> None:
    with pytest.raises(CustomNodesError):
        parse_custom_nodes({"schema": 1, "custom_nodes": [entry]})
