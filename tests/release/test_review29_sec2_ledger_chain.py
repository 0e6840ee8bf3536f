"""Review 29 (sec2): `goldgate status prod` believed a ledger line whose own hash was right without asking whether it
sat in the chain. A "promoted" line appended with a made-up `prev` and `seq`, or one slipped in between two entries,
made PROD's hand-pinned release look verified (no UNVERIFIED line), while `goldgate history` (and promote and rollback)
refuse that ledger: "`prev` does not match". The line `status` goes by must now follow the entry before it, and the
entry after it must follow it; else `status` says the ledger cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, status, unverified

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger, entry_hash


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOLDGATE_LEDGER_KEY", raising=False)


def _line(seq: int, prev: str, image: str = B) -> bytes:
    """A "promoted" outcome for `image` with its own hash right, as goldgate spells a line."""
    body = {"seq": seq, "ts": "2026-12-01T00:00:00Z", "kind": "promotion", "phase": "outcome", "stack": "prod",
            "target": "local", "image": image, "before": A, "after": image, "pinned": image, "prod_image": image,
            "outcome": "promoted", "trigger": "test", "prev": prev}
    return json.dumps({**body, "hash": entry_hash(body)}, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _history_refuses(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--home", str(home)]) != 0
    assert "does not match the entry before it" in capsys.readouterr().err


def test_a_line_appended_out_of_the_chain_does_not_hide_unverified(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    with (home / "ledger.jsonl").open("ab") as ledger:
        ledger.write(_line(99, "x"))
    _history_refuses(home, capsys)
    text, data = status(home, capsys)
    warning = data["unverified"]
    assert "UNVERIFIED" in text, text
    assert warning and warning.startswith(
        f"prod is pinned to {B}, and the release ledger ({home / 'ledger.jsonl'}) cannot be read (ledger #99 "
        "(promotion) does not follow the entry before it (its `prev` or `seq`): an entry was removed, reordered or "
        "inserted (`goldgate history` names it)): nothing shows that a golden run passed for it"), warning


def test_a_line_slipped_in_between_two_entries_does_not_hide_unverified(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    ledger.append("build", image=B, release_id="r-b", trigger="test")
    StackDir(home, "prod").pin(B, reason="by hand")
    path = home / "ledger.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    fourth = json.loads(lines[3])                # chained to #4, as #5 (the build) is
    path.write_bytes(b"".join(lines[:4]) + _line(5, fourth["hash"]) + lines[4])
    _history_refuses(home, capsys)
    warning = unverified(home, capsys)
    assert warning and "cannot be read (the entry after ledger #5 (promotion) does not follow it" in warning, warning


def test_an_entry_being_appended_as_status_reads_is_no_break(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    with (home / "ledger.jsonl").open("ab") as ledger:
        ledger.write(b'{"after":"local/wor')           # half of the next line: its append is under way
    text, data = status(home, capsys)
    warning = data["unverified"]
    assert warning is None and "UNVERIFIED" not in text, text
