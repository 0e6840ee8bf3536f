"""Review 19 (rel): a ledger whose last line lost its newline (an editor that strips it, a restore through a
shell's `$(cat ledger.jsonl)`) reads whole; the next entry appended to it must not be glued onto that line, which
made both lines unreadable and every later command, a rollback included, refuse the ledger as altered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.release import ledger as ledger_module
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64


def _strip_final_newline(home: Path) -> None:
    path = home / "ledger.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    ledger_module._verified.clear()   # as a new command finds it


@pytest.mark.parametrize("same_process", [False, True])
def test_an_entry_appended_after_the_last_newline_was_lost_starts_a_line_of_its_own(
        tmp_path: Path, same_process: bool) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home, key=None)
    ledger.append("build", image=A, release_id="r1")
    ledger.append("build", image=B, release_id="r2")
    if same_process:
        ledger.entries()   # this process verified the file before the edit
        path = home / "ledger.jsonl"
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    else:
        _strip_final_newline(home)
    assert [e.get("image") for e in Ledger(home, key=None).entries()] == [A, B]

    Ledger(home, key=None).append("build", image=C, release_id="r3")

    ledger_module._verified.clear()
    assert [e.get("image") for e in Ledger(home, key=None).entries()] == [A, B, C]
    lines = (home / "ledger.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]


def test_history_reads_the_ledger_after_an_append_to_a_file_cut_before_its_newline(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    Ledger(home, key=None).append("build", image=A, release_id="r1")
    _strip_final_newline(home)
    Ledger(home, key=None).append("build", image=B, release_id="r2")
    ledger_module._verified.clear()

    code, out, err = invoke(capsys, "history", "--home", str(home))

    assert code == 0, err
    assert "hash chain verified" in out
    assert "2 entries" in out
