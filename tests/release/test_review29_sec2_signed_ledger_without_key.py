"""Review 29 (sec2): `goldgate status prod` read the ledger from its end and checked a line's MAC only with
GOLDGATE_LEDGER_KEY set, which operators do not have (it is CI's secret). On a signed ledger, a "promoted" line
appended without the key (chained, its own hash right) made PROD's hand-pinned release look verified: the UNVERIFIED
line went away, while `goldgate promote --check` refused that very ledger for want of the key. Without the key, a
signed ledger is now one `status` cannot read, and says so; nothing in it is shown verified. With the key, and on a
ledger never signed, it reads as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prod_status_support import A, B, promoted, status, unverified

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger

KEY_ENV = "GOLDGATE_LEDGER_KEY"       # spelled out: the operator sets it by name
KEY = "k" * 64


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _forged_promotion(home: Path, image: str, mac: str | None = None) -> None:
    """A "promoted" outcome for `image` appended without the key, chained and hashed as goldgate would (`mac`: one
    made up, copied into the line)."""
    Ledger(home, key=None).append("promotion", phase="outcome", stack="prod", target="local", image=image,
                                  before=A, after=image, pinned=image, prod_image=image, outcome="promoted",
                                  trigger="test")
    if mac is not None:
        path = home / "ledger.jsonl"
        lines = path.read_bytes().splitlines()
        last = {**json.loads(lines[-1]), "mac": mac}
        lines[-1] = json.dumps(last, sort_keys=True, separators=(",", ":")).encode()
        path.write_bytes(b"\n".join(lines) + b"\n")


def _cannot_be_read(warning: str | None, home: Path) -> None:
    assert warning is not None, "a signed ledger read without its key was believed"
    assert warning.startswith(f"prod is pinned to {B}, and the release ledger ({home / 'ledger.jsonl'}) cannot be "
                              f"read (it is signed with a ledger key ("), warning
    assert f"carries a MAC) but {KEY_ENV} is not set" in warning, warning
    assert "nothing shows that a golden run passed for it and its smoke cases passed on prod" in warning, warning


@pytest.mark.parametrize("mac", [None, "0" * 64], ids=["no MAC", "a MAC made up"])
def test_a_promoted_line_added_without_the_key_does_not_hide_unverified(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mac: str | None) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home, key=KEY.encode()), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    _forged_promotion(home, B, mac)
    text, data = status(home, capsys)
    warning = data["unverified"]
    _cannot_be_read(warning, home)
    assert f"(ledger #{4 if mac is None else 5} carries a MAC)" in warning, warning   # the newest that does
    assert "UNVERIFIED" in text, text
    # promote refuses the same ledger for the same reason
    assert main(["promote", "--check", "--home", str(home)]) != 0
    assert f"{KEY_ENV} is not set" in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [None, 97], ids=["one read", "read in small chunks"])
def test_unsigned_lines_between_the_signed_ones_and_the_forged_one_change_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, chunk: int | None) -> None:
    if chunk is not None:   # the ledger read from its end a few bytes at a time: a MAC across two reads is found
        monkeypatch.setattr(ledger_file, "_TAIL_CHUNK", chunk)
    home = tmp_path / "home"
    promoted(Ledger(home, key=KEY.encode()), A)
    keyless = Ledger(home, key=None)     # a build and a STAGING deploy may be recorded without the key
    keyless.append("build", image=B, release_id="r-b", trigger="test")
    keyless.append("deploy", stack="staging", target="local", image=B, before=A, after=B, trigger="test")
    StackDir(home, "prod").pin(B, reason="by hand")
    _forged_promotion(home, B)
    warning = unverified(home, capsys)
    _cannot_be_read(warning, home)


def test_a_ledger_signed_after_status_read_it_unsigned_is_read_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home, key=None), A)
    StackDir(home, "prod").pin(B, reason="by hand")
    _forged_promotion(home, B)
    assert unverified(home, capsys) is None          # never signed: every entry is taken as it is, as before
    Ledger(home, key=KEY.encode()).append("build", image=A, release_id="r-a", trigger="test")   # CI signs from now on
    _forged_promotion(home, B)
    _cannot_be_read(unverified(home, capsys), home)


def test_with_the_key_a_signed_ledger_reads_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home, key=KEY.encode()), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    monkeypatch.setenv(KEY_ENV, KEY)
    assert unverified(home, capsys) is None
    monkeypatch.delenv(KEY_ENV)
    StackDir(home, "prod").pin(B, reason="by hand")
    _forged_promotion(home, B)
    monkeypatch.setenv(KEY_ENV, KEY)
    warning = unverified(home, capsys)
    assert warning and warning.startswith(f"prod is pinned to {B}, which no promotion or rollback verified there "
                                          "under the ledger key: its promotion (ledger #5) verified it there, but "
                                          "carries no MAC"), warning
