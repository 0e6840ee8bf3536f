"""Review 29 (mut): the line `goldgate up` says when a stack starts on a pin its last host never served (a deploy,
promote or rollback cut short after it moved the pin). A host that a signal stopped leaves a "stopped" record that
names the image it served, as a "ready" one does: the line is said after such a stop too. On STAGING it names the
deploy that records the pin; on PROD, whose pins change only by promote and rollback, it does not."""

from __future__ import annotations

from pathlib import Path

from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def _said(tmp_path: Path, stack: str, status: str) -> list[str]:
    home = tmp_path / "home"
    d = StackDir(home, stack)
    d.ensure()
    # The promotion that moved the pin, cut short (a pin no promotion moved is said otherwise: test_review29_rel2_*)
    Ledger(home).append("promotion", phase="intent", stack=stack, target="local", image=B, before=A, trigger="test")
    d.pin(B, reason="test")
    said: list[str] = []
    LocalPlatform(home, stacks_file(home))._note_pin_never_served(stack, d, {"status": status, "image": A},
                                                                  said.append)
    return said


def test_a_host_a_signal_stopped_names_the_pin_it_never_served(tmp_path: Path) -> None:
    [line] = _said(tmp_path, "staging", "stopped")
    assert line.startswith(f"staging: starting on its pin {B}, which its last host never served (it served {A})")
    assert f"`goldgate deploy staging --image {B}` records it, then `goldgate golden staging`" in line, line


def test_on_prod_the_line_names_no_deploy(tmp_path: Path) -> None:
    [line] = _said(tmp_path, "prod", "ready")
    assert line.startswith(f"prod: starting on its pin {B}, which its last host never served"), line
    assert "goldgate deploy" not in line and line.endswith("shows the last recorded change)"), line
