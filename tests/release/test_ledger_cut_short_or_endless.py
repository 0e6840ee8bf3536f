"""The ledger file under what the system or a bad restore does to it. An append the system cuts short (a full disk,
a file size limit) fails and leaves the ledger as it was: before, half a line stayed at its end and every later
command, `goldgate rollback` of a broken PROD included, refused the ledger as "altered or truncated" until someone
edited it by hand. The file size limit (RLIMIT_FSIZE) stands in for a full disk: the kernel writes what fits and
refuses the rest, as it does when the disk fills. A file that is one endless line is named, not read whole."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
# A promotion's outcome as `goldgate promote` appends it after PROD changed: the append that must not tear.
APPEND = ("import sys; from pathlib import Path; from goldgate.release.ledger import Ledger; "
          "Ledger(Path(sys.argv[1])).append('promotion', phase='outcome', intent_seq=2, stack='prod', "
          f"image='{B}', before='{A}', after='{B}', pinned='{B}', prod_image='{B}', outcome='promoted', "
          "gate={'conditions': ['x' * 200] * 20}, trigger='test')")


def _disk_fills_after(size: int):  # type: ignore[no-untyped-def]
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a refused write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_an_append_cut_short_leaves_the_ledger_readable_and_appendable(capsys: pytest.CaptureFixture,
                                                                        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append("build", image=B, release_id="r2", trigger="test")
    ledger.append("promotion", phase="intent", stack="prod", image=B, before=A, trigger="test")
    before = ledger.path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", APPEND, str(tmp_path)], capture_output=True, text=True, check=False,
                          preexec_fn=_disk_fills_after(len(before) + 100), timeout=60)
    assert proc.returncode != 0 and "File too large" in proc.stderr     # the append failed, and said so
    assert ledger.path.read_bytes() == before                          # nothing of it stayed behind
    code, out, err = invoke(capsys, "history", "--home", str(tmp_path))
    assert (code, err) == (0, "") and "2 entries; hash chain verified" in out
    assert ledger.append("promotion", phase="outcome", intent_seq=2, stack="prod", image=B, outcome="interrupted",
                         trigger="goldgate reconcile").seq == 3
    assert len(ledger.entries()) == 3


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_a_ledger_that_is_one_endless_line_is_named_in_one_line(tmp_path: Path) -> None:
    # A file restored in the ledger's place that holds no newline (a sparse or binary file): before, the whole of it
    # was read as one line, and `goldgate history` died of a MemoryError traceback (or took the machine's memory).
    with (tmp_path / "ledger.jsonl").open("wb") as fh:
        fh.truncate(3 << 30)   # sparse: no disk space
    proc = subprocess.run([sys.executable, "-m", "goldgate.cli", "history", "--home", str(tmp_path)],
                          capture_output=True, text=True, check=False, preexec_fn=_limit_memory, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "ledger.jsonl:1: line is longer than 1000000 bytes; the ledger has been altered" in proc.stderr
