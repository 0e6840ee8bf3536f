"""The hash chain catches an entry edited with its own hash recomputed (what a script that "fixes" one line does),
and one dropped with the next renumbered and rehashed: each line's own hash then verifies, and only its link to the
line before it (`prev`) shows the edit. Before this test nothing held that link: the ledger read as intact."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from goldgate.release.ledger import Ledger, LedgerTampered

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
EVIL = "local/worker@sha256:" + "e" * 64


def _rehashed(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    entry["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("tamper", ["edit and rehash", "drop and renumber"])
def test_an_entry_rewritten_with_a_valid_hash_of_its_own_breaks_the_chain_at_the_next_line(
        tmp_path: Path, tamper: str) -> None:
    ledger = Ledger(tmp_path)
    for image in (A, B, A):
        ledger.append("deploy", stack="staging", after=image)
    lines = ledger.path.read_text().splitlines()
    if tamper == "edit and rehash":
        entry = json.loads(lines[1])
        entry["after"] = EVIL
        lines[1] = _rehashed(entry)
        where = 3
    else:
        del lines[1]
        entry = json.loads(lines[1])
        entry["seq"] = 2
        lines[1] = _rehashed(entry)
        where = 2
    ledger.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LedgerTampered, match=rf"ledger\.jsonl:{where}: `prev` does not match the entry before it"):
        ledger.entries()
    with pytest.raises(LedgerTampered):
        ledger.append("deploy", stack="staging", after=A)
