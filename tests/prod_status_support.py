"""What `goldgate status prod` is told of a local PROD's release: the ledger entries a promotion leaves, a promotion
under way (its process holds the release lock), and the status read back, as text and as --json. For the tests of
what status says of a pinned release, whether a promotion or rollback verified it (the UNVERIFIED line)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from goldgate.cli import main
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64

# argv: the home, the purpose, the kind, then the command line the lock file names ("": this script's own).
_LOCK_HOLDER = """
import shlex, sys, time
from pathlib import Path
from goldgate.release.lock import ReleaseLock
home, purpose, kind, command = sys.argv[1:5]
sys.argv = shlex.split(command) if command else sys.argv[:3]
with ReleaseLock(Path(home), purpose, kind=kind):
    print("locked", flush=True)
    time.sleep(60)
"""


def promoted(ledger: Ledger, image: str, before: str | None = None) -> None:
    """What a promotion of `image` to PROD (from `before`) whose smoke cases passed leaves in the ledger, after the
    full golden run on STAGING that qualified it."""
    ledger.append("golden", stack="staging", target="local", image=image, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image, before=before,
                           trigger="test")
    ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  before=before, after=image, pinned=image, prod_image=image, outcome="promoted", trigger="test")


@contextmanager
def promotion_under_way(home: Path, purpose: str = "promote staging -> prod", kind: str = "change",
                        command: str = "") -> Iterator[int]:
    """A promotion's process while the block lasts: it holds the release lock under `home` as goldgate takes it (the
    flock, and the file naming its pid, `purpose`, `kind` and command line: `command` when given), and is killed (-9)
    as the block ends. Other holders: a rollback ("rollback prod", command="goldgate rollback"), a golden run of PROD
    (kind="golden"). Yields its pid."""
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(home), purpose, kind, command],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def status(home: Path, capsys: pytest.CaptureFixture[str], stack: str = "prod") -> tuple[str, dict[str, Any]]:
    """`goldgate status <stack>` of the local stacks under `home`: its text, then its --json (each exits 0)."""
    capsys.readouterr()
    assert main(["status", stack, "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert main(["status", stack, "--home", str(home), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def unverified(home: Path, capsys: pytest.CaptureFixture[str]) -> str | None:
    """What `goldgate status prod`'s UNVERIFIED line says (its --json `unverified`); None when it has none."""
    capsys.readouterr()
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["unverified"]
