"""Ledger lines whose chain verifies but whose values are no entry goldgate writes: a field the release code looks
releases up by that is not text, a sequence number that is not a whole number, values nested hundreds deep. Whoever
can write the ledger branch can chain such a line (the hash is sha256 of the entry's canonical JSON); every command
that reads the ledger names the line in one error instead of ending in a traceback or blaming a path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from test_cli_errors import one_error_line, run

GENESIS = "0" * 64
A = "local/worker@sha256:" + "a" * 64


def _chain(home: Path, *fields: dict[str, Any]) -> None:
    """Write entries 1..n as a forger would: each line's `prev` and `hash` recomputed, so the chain verifies."""
    home.mkdir(parents=True, exist_ok=True)
    prev, lines = GENESIS, []
    for seq, extra in enumerate(fields, start=1):
        body = {"seq": seq, "ts": "2026-11-29T10:00:00+00:00", "kind": "build", "prev": prev, **extra}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        lines.append(json.dumps({**body, "hash": digest}, sort_keys=True, separators=(",", ":")))
        prev = digest
    (home / "ledger.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("entry", "said"), [
    ({"image": [A], "release_id": "r1"}, "field 'image' is list, not text"),
    ({"kind": "promotion", "phase": "outcome", "stack": "prod", "outcome": "promoted", "prod_image": {"x": 1}},
     "field 'prod_image' is dict, not text"),
    ({"kind": "promotion", "phase": "outcome", "stack": "prod", "intent_seq": [1]},
     "field 'intent_seq' is list, not a whole number"),
], ids=["build-image-list", "verified-image-mapping", "intent-seq-list"])
@pytest.mark.parametrize("command", [["rollback"], ["promote", "--check"]])
def test_a_chained_entry_with_a_field_of_the_wrong_type_is_named_in_one_line(
        capsys: pytest.CaptureFixture, tmp_path: Path, entry: dict[str, Any], said: str, command: list[str]) -> None:
    # Before: `goldgate rollback` ended in `TypeError: unhashable type: 'list'` (release ids and verified releases
    # are looked up by image), with no word on which line of the ledger was at fault.
    home = tmp_path / "home"
    _chain(home, {"image": A, "release_id": "r0"}, entry)
    code, _, err = run(capsys, home, *command)
    line = one_error_line(err)
    assert code == 1 and f"ledger.jsonl:2: {said}" in line and "the ledger has been altered" in line


def test_a_chained_entry_whose_sequence_number_is_not_a_whole_number_is_named(capsys: pytest.CaptureFixture,
                                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    _chain(home, {"image": A})
    text = (home / "ledger.jsonl").read_text().replace('"seq":1', '"seq":true')
    body = {k: v for k, v in json.loads(text).items() if k != "hash"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (home / "ledger.jsonl").write_text(json.dumps({**body, "hash": digest}) + "\n")
    code, _, err = run(capsys, home, "history")
    assert code == 1 and "ledger.jsonl:1: seq 'True' is not a whole number" in one_error_line(err)


@pytest.mark.parametrize("depth", [200, 900])
def test_values_nested_hundreds_deep_are_named_not_blamed_on_a_path(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                   depth: int) -> None:
    # Before: the chain verified, and `goldgate history --json` said "a path is nested too deeply to create or read;
    # check --home, GOLDGATE_HOME and the paths given": nothing to do with the cause.
    home = tmp_path / "home"
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    _chain(home, {"image": A, "evidence": nested})
    code, out, err = run(capsys, home, "history", "--json")
    line = one_error_line(err)
    assert code == 1 and out == ""
    assert "ledger.jsonl:1: values are nested more than 32 levels deep" in line and "path" not in line


def test_the_entries_goldgate_writes_still_read_back(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    # The checks above refuse nothing goldgate records: null pins, nested gate decisions, lists of failures.
    from goldgate.release.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.append("promotion", phase="intent", stack="prod", image=A, release_id=None, before=None, report="r",
                  report_sha256="s", gate={"passed": True, "conditions": [{"name": "x", "passed": True}]},
                  trigger="user:t")
    ledger.append("promotion", phase="outcome", intent_seq=1, stack="prod", image=A, before=None, after=A,
                  pinned=A, prod_image=A, outcome="promoted", smoke_report=None, smoke_passed=True, error=None,
                  rollback=None, trigger="user:t")
    code, out, _ = run(capsys, tmp_path, "history", "--json")
    assert code == 0 and [e["seq"] for e in json.loads(out)] == [1, 2]
