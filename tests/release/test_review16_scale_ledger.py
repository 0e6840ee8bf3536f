"""A ledger of years of releases is verified once per command, not once per read or append: a promotion reads the
ledger and appends to it several times, and each pass over 20,000 entries took seconds. What was verified is trusted
again only while the file still begins with exactly those bytes: an edit, a cut or a restore is read in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.release import ledger as ledger_module
from goldgate.release.ledger import Ledger, LedgerTampered

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 40


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many ledger lines were judged as entries (each goes through _odd_field once)."""
    seen: list[int] = []
    real = ledger_module._odd_field

    def counting(line):  # type: ignore[no-untyped-def]
        seen.append(line.get("seq"))
        return real(line)

    monkeypatch.setattr(ledger_module, "_odd_field", counting)
    return seen


def _fill(home: Path, count: int) -> Ledger:
    ledger = Ledger(home, key=None)
    for i in range(count):
        ledger.append("build", image=f"repo/worker@sha256:{i:064x}", workflow_version="2026.11.0")
    getattr(ledger_module, "_verified", {}).clear()   # as a new command starts: nothing verified yet
    return ledger


def test_a_second_read_and_an_append_judge_only_the_lines_added_since(tmp_path: Path, judged: list[int]) -> None:
    ledger = _fill(tmp_path, 300)
    assert len(ledger.entries()) == 300
    assert len(judged) == 300
    judged.clear()
    assert [e.seq for e in ledger.entries()][-1] == 300
    entry = Ledger(tmp_path, key=None).append("deploy", stack="staging", image="repo/worker@sha256:" + "f" * 64)
    assert entry.seq == 301 and entry.prev == ledger.entries()[299].hash
    assert judged == []   # nothing of the 300 verified lines parsed again, nor the line this process wrote


def test_an_entry_another_process_appended_is_read_and_chained_onto(tmp_path: Path, judged: list[int]) -> None:
    ledger = _fill(tmp_path, 50)
    ledger.entries()
    judged.clear()
    code = ("import sys; from pathlib import Path; from goldgate.release.ledger import Ledger; "
            "Ledger(Path(sys.argv[1]), key=None).append('deploy', stack='staging', image='repo/worker@sha256:' + 'e' * 64)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)})
    read = ledger.entries()
    assert [e.seq for e in read[-2:]] == [50, 51] and read[-1].kind == "deploy"
    assert judged == [51]
    assert ledger.append("golden", stack="staging", passed=True).prev == read[-1].hash


def test_an_edit_to_a_line_already_verified_is_still_named(tmp_path: Path) -> None:
    ledger = _fill(tmp_path, 40)
    ledger.entries()
    lines = ledger.path.read_text().splitlines()
    edited = json.loads(lines[9])
    edited["workflow_version"] = "2099.1.0"   # same length: only the content tells
    lines[9] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    ledger.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerTampered, match=r"ledger\.jsonl:10: hash mismatch"):
        ledger.entries()
    with pytest.raises(LedgerTampered, match=r"ledger\.jsonl:10: hash mismatch"):
        ledger.append("deploy", stack="staging", image="repo/worker@sha256:" + "d" * 64)


def test_a_ledger_cut_back_or_restored_is_read_again_in_full(tmp_path: Path) -> None:
    ledger = _fill(tmp_path, 30)
    ledger.entries()
    lines = ledger.path.read_text().splitlines(keepends=True)
    ledger.path.write_text("".join(lines[:20]))   # restored from an older backup
    assert [e.seq for e in ledger.entries()][-1] == 20
    assert ledger.append("deploy", stack="staging", image="repo/worker@sha256:" + "c" * 64).seq == 21


def test_entries_read_without_the_key_are_judged_again_under_it(tmp_path: Path) -> None:
    ledger = _fill(tmp_path, 5)
    assert all(e.authentic for e in ledger.entries())
    keyed = Ledger(tmp_path, key=KEY)
    assert [e.authentic for e in keyed.entries()] == [False] * 5
    keyed.append("deploy", stack="staging", image="repo/worker@sha256:" + "b" * 64)
    assert [e.authentic for e in keyed.entries()] == [False] * 5 + [True]
    assert all(e.authentic for e in Ledger(tmp_path, key=None).entries())
