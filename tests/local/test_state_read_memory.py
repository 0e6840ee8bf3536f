"""Reading a small file under a large limit takes memory for the file, not for the limit: read_small_bytes with a
saved result object's 5 GiB limit asked for 5 GiB on every read, and `goldgate up` of a stack with a saved object
failed with a bare MemoryError on a host with less (a ulimit, a small VM)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import needs

SCRIPT = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1024 ** 3, 1024 ** 3))  # 1 GiB of address space in all
from goldgate.local.state import read_small_bytes
print(read_small_bytes(Path(sys.argv[1]), 5 * 1024 ** 3))
"""


@needs(sys.platform.startswith("linux"), "RLIMIT_AS as Linux enforces it")
def test_a_tiny_file_under_a_huge_limit_is_read_in_little_memory(tmp_path: Path) -> None:
    small = tmp_path / "obj.bin"
    small.write_bytes(b"hi\n")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(small)], capture_output=True, text=True, check=False,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0 and run.stdout.strip() == "b'hi\\n'", run.stderr


def test_a_file_that_grows_past_the_limit_while_read_is_refused(tmp_path: Path, monkeypatch) -> None:
    from goldgate.errors import StateError
    from goldgate.local import state

    grown = tmp_path / "grown.json"
    grown.write_bytes(b"x" * 10)
    before = grown.stat()

    def smaller(_fd: int):  # every look sees it small; it is larger when read
        grown.write_bytes(b"x" * 5000)
        return before

    monkeypatch.setattr(state.os, "fstat", smaller)
    with pytest.raises(StateError, match="is over 1000 bytes"):
        state.read_small_bytes(grown, 1000)
