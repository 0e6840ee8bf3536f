"""Review 30 mutation audit (mut30): the ledger's chain rule (`_chain_fault`), as the full read (`goldgate history`,
promote, rollback) and the read from the end (`status`, `read_last_golden_run`) apply it. An unsigned ledger's last
entry rewritten by hand with its hash recomputed, so that only the chain can tell: a seq that skips one, a `prev`
that names no entry, a first entry that is not the first (seq 2), or the right seq written as no whole number
(3.0, true). Each is refused as altered by both reads; the
full read names the seq that does not follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger, LedgerTampered, entry_hash, read_last_golden_run


def _image(n: int) -> str:
    return f"r@sha256:{n:064x}"


def _ledger_with_last_edited(home: Path, entries: int, edit) -> str:
    ledger = Ledger(home)
    for n in range(entries):
        ledger.append("golden", stack="prod", target="local", image=_image(n), suite="smoke", passed=True,
                      role="prod", failures=[], trigger="test")
    lines = ledger.path.read_text().splitlines()
    last = json.loads(lines[-1])
    edit(last)
    last["hash"] = entry_hash({k: v for k, v in last.items() if k not in ("hash", "mac")})
    lines[-1] = json.dumps(last, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    ledger.path.write_text("\n".join(lines) + "\n")
    return _image(entries - 1)


EDITS = {
    "a seq that skips one": (3, lambda e: e.update(seq=e["seq"] + 1)),
    "a prev naming no entry": (3, lambda e: e.update(prev="f" * 64)),
    "a first entry with seq 2": (1, lambda e: e.update(seq=2)),
    # the number it should be, written as JSON no entry has: 3.0, or true (which Python counts as 1)
    "a seq written as a float": (3, lambda e: e.update(seq=float(e["seq"]))),
    "a first seq written as true": (1, lambda e: e.update(seq=True)),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_entry_off_the_chain_is_refused_by_both_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          edit: str) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)
    entries, change = EDITS[edit]
    image = _ledger_with_last_edited(tmp_path, entries, change)
    with pytest.raises(LedgerTampered) as full:
        Ledger(tmp_path).entries()
    if edit == "a seq that skips one":
        assert "sequence 4 follows 2" in str(full.value), full.value
    with pytest.raises(LedgerTampered):
        read_last_golden_run(tmp_path, "prod", image)
