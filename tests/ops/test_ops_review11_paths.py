"""Paths the file system refuses are one line that says what to fix: a state dir inside a loop of symbolic links
(pathlib's RuntimeError was a traceback from every command), and a name longer than the file system allows (the
advice was to look for free space and write permission)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldgate.cli import main


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a" / "home"


@pytest.mark.parametrize("argv", [["history"], ["status"], ["metrics", "staging"], ["dr-drill", "staging"]],
                         ids=lambda argv: argv[0])
def test_a_home_inside_a_loop_of_links_is_one_line(capsys, loop: Path, argv: list[str]) -> None:
    assert main([*argv, "--home", str(loop)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"goldgate: error: --home {loop}: its symbolic links form a loop; set it to the state directory's path"]


def test_goldgate_home_inside_a_loop_of_links_is_named(capsys, monkeypatch, loop: Path) -> None:
    monkeypatch.setenv("GOLDGATE_HOME", str(loop))
    assert main(["history"]) == 1
    assert "GOLDGATE_HOME" in capsys.readouterr().err


def _too_long(directory: Path) -> Path:
    return directory / ("n" * (os.pathconf(directory, "PC_NAME_MAX") + 1))


def test_a_state_dir_name_too_long_says_to_shorten_it(capsys, tmp_path: Path) -> None:
    assert main(["history", "--home", str(_too_long(tmp_path))]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("shorten the state dir (--home, GOLDGATE_HOME): a name in it is longer than the file "
                         "system allows"), line


def test_a_backup_name_too_long_says_to_shorten_that_path(capsys, tmp_path: Path) -> None:
    assert main(["dr-restore", "staging", "--home", str(tmp_path / "home"), "--backup", str(_too_long(tmp_path))]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith("shorten that path: a name in it is longer than the file system allows"), line
