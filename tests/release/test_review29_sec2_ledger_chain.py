"""Review 29 (sec2): `goldgate status prod` believed a ledger line whose own hash was right without asking whether it
sat in the chain. A "promoted" line appended with a made-up `prev` and `seq`, or one slipped in between two entries,
made PROD's hand-pinned release look verified (no UNVERIFIED line), while `goldgate history` (and promote and rollback)
refuse that ledger: "`prev` does not match". The line `status` goes by must now follow the entry before it, and the
entry after it must follow it; else `status` says the ledger cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger, entry_hash

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_LEDGER_KEY", raising=False)


def _promoted(ledger: Ledger, image: str) -> None:
    """What a promotion of `image` to PROD whose smoke cases passed leaves in the ledger."""
    ledger.append("golden", stack="staging", target="local", image=image, suite="full", passed=True, role="staging",
                  failures=[], trigger="test")
    intent = ledger.append("promotion", phase="intent", stack="prod", target="local", image=image, before=None,
                           trigger="test")
    ledger.append("golden", stack="prod", target="local", image=image, suite="smoke", passed=True, role="prod",
                  failures=[], trigger="test")
    ledger.append("promotion", phase="outcome", intent_seq=intent.seq, stack="prod", target="local", image=image,
                  before=None, after=image, pinned=image, prod_image=image, outcome="promoted", trigger="test")


def _line(seq: int, prev: str, image: str = B) -> bytes:
    """A "promoted" outcome for `image` with its own hash right, as goldgate spells a line."""
    body = {"seq": seq, "ts": "2026-12-01T00:00:00Z", "kind": "promotion", "phase": "outcome", "stack": "prod",
            "target": "local", "image": image, "before": A, "after": image, "pinned": image, "prod_image": image,
            "outcome": "promoted", "trigger": "test", "prev": prev}
    return json.dumps({**body, "hash": entry_hash(body)}, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _status(home: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str | None]:
    assert main(["status", "prod", "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert main(["status", "prod", "--home", str(home), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)["unverified"]


def _history_refuses(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--home", str(home)]) != 0
    assert "does not match the entry before it" in capsys.readouterr().err


def test_a_line_appended_out_of_the_chain_does_not_hide_unverified(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    _promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    with (home / "ledger.jsonl").open("ab") as ledger:
        ledger.write(_line(99, "x"))
    _history_refuses(home, capsys)
    text, warning = _status(home, capsys)
    assert "UNVERIFIED" in text, text
    assert warning and warning.startswith(
        f"prod is pinned to {B}, and the release ledger ({home / 'ledger.jsonl'}) cannot be read (ledger #99 "
        "(promotion) does not follow the entry before it (its `prev` or `seq`): an entry was removed, reordered or "
        "inserted (`goldgate history` names it)): nothing shows that a golden run passed for it"), warning


def test_a_line_slipped_in_between_two_entries_does_not_hide_unverified(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    _promoted(ledger, A)
    ledger.append("build", image=B, release_id="r-b", trigger="test")
    StackDir(home, "prod").pin(B, reason="by hand")
    path = home / "ledger.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    fourth = json.loads(lines[3])                # chained to #4, as #5 (the build) is
    path.write_bytes(b"".join(lines[:4]) + _line(5, fourth["hash"]) + lines[4])
    _history_refuses(home, capsys)
    _, warning = _status(home, capsys)
    assert warning and "cannot be read (the entry after ledger #5 (promotion) does not follow it" in warning, warning


def test_an_entry_being_appended_as_status_reads_is_no_break(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    _promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    with (home / "ledger.jsonl").open("ab") as ledger:
        ledger.write(b'{"after":"local/wor')           # half of the next line: its append is under way
    text, warning = _status(home, capsys)
    assert warning is None and "UNVERIFIED" not in text, text
