"""Review 29 (sec2): `goldgate status prod` reads the ledger from its end, and passed over a line longer than any
entry (`_MAX_LINE`) as it went, reading on: a sparse ledger.jsonl (`truncate -s 4G`) took it 11 s, a 1 TiB one hours,
and it then showed the release the lines before the hole verified. `goldgate history` (and promote and rollback)
refuse such a ledger at once ("line is longer than ... bytes"). `status` now stops as soon as that many bytes go by
without a newline, and says the ledger cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prod_status_support import A, promoted, unverified

from goldgate.cli import main
from goldgate.local.state import StackDir
from goldgate.release import ledger as ledger_file
from goldgate.release.ledger import Ledger


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ledger_file.KEY_ENV, raising=False)


def test_a_sparse_hole_after_the_entries_is_a_ledger_status_cannot_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    promoted(Ledger(home), A)
    StackDir(home, "prod").pin(A, reason="deploy")
    path = home / "ledger.jsonl"
    assert unverified(home, capsys) is None
    os.truncate(path, path.stat().st_size + 64 * 1024 * 1024)     # `truncate -s +64M`: no disk, all zeros
    assert main(["history", "--home", str(home)]) != 0
    assert "line is longer than" in capsys.readouterr().err
    warning = unverified(home, capsys)
    assert warning and warning.startswith(
        f"prod is pinned to {A}, and the release ledger ({path}) cannot be read (it holds a line longer than "
        f"{ledger_file._MAX_LINE} bytes, which goldgate never writes: it has been altered"), warning


def test_a_line_longer_than_any_entry_between_entries_is_refused_too(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_file, "_MAX_LINE", 2000)
    monkeypatch.setattr(ledger_file, "_TAIL_CHUNK", 4096)
    home = tmp_path / "home"
    ledger = Ledger(home)
    promoted(ledger, A)
    StackDir(home, "prod").pin(A, reason="deploy")
    path = home / "ledger.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"x" * 3000 + b"\n" + b"".join(lines[1:]))
    warning = unverified(home, capsys)
    assert warning and "cannot be read (it holds a line longer than 2000 bytes" in warning, warning
