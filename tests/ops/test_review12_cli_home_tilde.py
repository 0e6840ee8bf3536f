"""A state dir given as `~/...` that nothing expanded (`--home=~/gg`, a quoted "~/gg", `GOLDGATE_HOME: ~/gg` in a CI
env block) is refused: the state went into a directory literally named ~ under the working directory, where the
next command run as intended (with the ~ expanded) found no stacks, no ledger and no drill records."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("GOLDGATE_HOME", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.mark.parametrize("argv", [["dr-drill", "staging"], ["history"], ["status"]], ids=lambda argv: argv[0])
def test_an_unexpanded_tilde_in_home_is_refused_and_creates_nothing(capsys, here: Path, argv: list[str]) -> None:
    assert main([*argv, "--home=~/gg"]) == 1
    assert capsys.readouterr().err.splitlines() == [(
        "goldgate: error: --home ~/gg begins with a ~ that was not expanded (the shell expands it only at the start "
        "of a word, not after `--home=`, inside quotes or in a CI env block), so the state would go into a directory "
        f"named ~ here: give the full path, {here.parent / 'user' / 'gg'}")]
    assert list(here.iterdir()) == []


def test_an_unexpanded_tilde_in_goldgate_home_is_named(capsys, here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLDGATE_HOME", "~/gg")
    assert main(["dr-drill", "staging"]) == 1
    assert capsys.readouterr().err.startswith("goldgate: error: GOLDGATE_HOME ~/gg begins with a ~ that was not "
                                              "expanded")
    assert list(here.iterdir()) == []


def test_a_path_with_a_tilde_inside_it_is_a_path_like_any_other(capsys, here: Path) -> None:
    assert main(["history", "--home", "state~/gg", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
