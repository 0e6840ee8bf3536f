"""`goldgate client add` with its standard output redirected to a file (as the RUNBOOK keeps a token off the screen):
the token is in that file, so the note on stderr must not send the operator to "the line above", which is not there;
on a terminal it still says the line above."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from goldgate.cli import main


def test_a_redirected_add_says_the_token_went_to_its_standard_output(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    with token_file.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "goldgate", "client", "add", "team-a", "--stack", "prod",
                               "--home", str(tmp_path / "home")], stdout=out, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    token = token_file.read_text().strip()
    assert len(token) >= 32 and token not in done.stderr
    assert "line above" not in done.stderr, done.stderr
    assert "its token is what this command wrote to its standard output, shown once" in done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_token_is_the_line_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["client", "add", "team-b", "--stack", "prod", "--home", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "its token is the line above, shown once" in err, err
    assert terminal.getvalue().strip() not in err
