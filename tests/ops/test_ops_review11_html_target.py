"""`goldgate metrics --html FILE` with a long file name: a name the file system takes is written (the temporary
file beside it must not pass the limit), and one it does not take is refused naming --html, without advice about
free space."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


@pytest.fixture
def home(tmp_path: Path, stack_db) -> Path:
    home = tmp_path / "home"
    stack_db(LocalPlatform(home).db_path("staging"), jobs=20)
    return home


def _name_max(directory: Path) -> int:
    return os.pathconf(directory, "PC_NAME_MAX")


def test_a_report_named_up_to_the_file_systems_limit_is_written(capsys, home: Path, tmp_path: Path) -> None:
    page = tmp_path / ("r" * (_name_max(tmp_path) - len(".html")) + ".html")
    assert main(["metrics", "staging", "--home", str(home), "--html", str(page)]) == 0
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["home", page.name])  # no temporary file left


def test_a_name_past_the_limit_is_one_line_naming_html(capsys, home: Path, tmp_path: Path) -> None:
    page = tmp_path / ("r" * (_name_max(tmp_path) + 1) + ".html")
    assert main(["metrics", "staging", "--home", str(home), "--html", str(page)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("goldgate: error: --html ") and line.endswith("File name too long; name a new .html file")
