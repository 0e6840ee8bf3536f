"""`goldgate history` on a ledger of years: the table shows the newest entries and says how many it left out;
--json stays whole for scripts unless --limit is given."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.release.ledger import Ledger

A = "local/worker@sha256:" + "a" * 64


def _history(capsys: pytest.CaptureFixture, home: Path, *argv: str) -> tuple[int, str]:
    code = main(["history", "--home", str(home), *argv])
    return code, capsys.readouterr().out


def _seqs(table: str) -> list[int]:
    return [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\d{4}-", table, re.MULTILINE)]


@pytest.fixture(scope="module")
def long_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ledger = Ledger(home)
    for n in range(120):
        ledger.append("build", image=A, release_id=f"r{n}", trigger="user:t")
    return home


def test_the_table_shows_the_newest_entries_and_says_how_many_older_ones_it_left_out(capsys, long_ledger):
    code, out = _history(capsys, long_ledger)
    assert code == 0 and _seqs(out) == list(range(71, 121)), out
    assert "the newest 50 of 120 entries (70 older not shown: --limit N for more, --all for every one)" in out
    assert "hash chain verified" in out


def test_all_shows_every_entry_and_limit_the_newest_n(capsys, long_ledger):
    code, out = _history(capsys, long_ledger, "--all")
    assert code == 0 and _seqs(out) == list(range(1, 121)) and "120 entries; hash chain verified" in out
    code, out = _history(capsys, long_ledger, "--limit", "3")
    assert code == 0 and _seqs(out) == [118, 119, 120] and "the newest 3 of 120 entries" in out


def test_json_is_whole_unless_a_limit_is_given(capsys, long_ledger):
    code, out = _history(capsys, long_ledger, "--json")
    assert code == 0 and [e["seq"] for e in json.loads(out)] == list(range(1, 121))
    code, out = _history(capsys, long_ledger, "--json", "--limit", "2")
    assert code == 0 and [e["seq"] for e in json.loads(out)] == [119, 120]


def test_only_the_entries_shown_are_turned_into_rows(capsys, long_ledger, monkeypatch):
    from goldgate.release import ledger as ledger_module

    made = []
    real = ledger_module.Entry.to_dict

    def counting(entry):
        made.append(entry.seq)
        return real(entry)

    monkeypatch.setattr(ledger_module.Entry, "to_dict", counting)
    assert _history(capsys, long_ledger, "--json", "--limit", "5")[0] == 0
    assert made == [116, 117, 118, 119, 120]
