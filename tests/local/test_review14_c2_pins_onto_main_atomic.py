"""`goldgate pins-onto-main` rewrites main's stacks/Pulumi.*.yaml, which CI's pin commit (`git commit -a`) then takes
to main. It wrote them in place (write_bytes: truncate, then write): a full disk or a kill mid-write left a truncated
stack file in main's checkout. It writes each whole or not at all now (temp, fsync, rename), with the file's mode."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

from goldgate.release.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64
FIRST = "ghcr.example/acme/worker@sha256:" + "a" * 64
SECOND = "ghcr.example/acme/worker@sha256:" + "b" * 64


def _stack_text(stack: str, image: str) -> str:
    text = (REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert text.count(PLACEHOLDER) == 1
    return text.replace(PLACEHOLDER, image)


def _checkouts(tmp_path: Path) -> Path:
    """This run's stack files pin SECOND on both stacks, main's FIRST; the ledger says STAGING runs SECOND."""
    Ledger(tmp_path / "home").append("deploy", stack="staging", target="cloud", before=FIRST, after=SECOND,
                                     image=SECOND, trigger="test")
    for where, image in (("ours", SECOND), ("main", FIRST)):
        for stack in ("staging", "prod"):
            path = tmp_path / where / "stacks" / f"Pulumi.{stack}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_stack_text(stack, image).encode("utf-8"))
    return tmp_path / "main" / "stacks"


def _disk_full() -> None:
    """In the child: no file may grow (EFBIG where a full disk says ENOSPC), and growing one is no signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _pins_onto_main(tmp_path: Path, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "goldgate.cli", "pins-onto-main", "--main-dir", str(tmp_path / "main"),
                           "--stacks-dir", str(tmp_path / "ours" / "stacks"), "--home", str(tmp_path / "home")],
                          check=False, capture_output=True, text=True, timeout=120, preexec_fn=preexec, cwd=REPO,
                          env={k: v for k, v in os.environ.items() if k != "GOLDGATE_LEDGER_KEY"})


def test_a_full_disk_leaves_mains_stack_files_whole_and_says_so_in_one_line(tmp_path: Path) -> None:
    mains = _checkouts(tmp_path)
    before = {path.name: path.read_bytes() for path in mains.iterdir()}
    done = _pins_onto_main(tmp_path, preexec=_disk_full)
    assert done.returncode == 1, done
    # main's checkout is as it was: no truncated stack file for the pin commit to take, and no temp file left
    assert {path.name: path.read_bytes() for path in mains.iterdir()} == before
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("goldgate: error: File too large"), done.stderr
    assert str(mains / "Pulumi.staging.yaml") in lines[0], lines[0]


def test_the_moved_files_keep_their_mode_and_only_their_pin_changes(tmp_path: Path) -> None:
    mains = _checkouts(tmp_path)
    os.chmod(mains / "Pulumi.prod.yaml", 0o640)
    done = _pins_onto_main(tmp_path)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((mains / "Pulumi.prod.yaml").stat().st_mode) == 0o640
    assert (mains / "Pulumi.prod.yaml").read_text(encoding="utf-8") == _stack_text("prod", SECOND)
    assert sorted(path.name for path in mains.iterdir()) == ["Pulumi.prod.yaml", "Pulumi.staging.yaml"]
