"""A file where the state dir needs a directory (or a directory where it needs a file) is named, with what to do:
the advice was "check that the state dir is a writable directory with free space", which sends an operator after
the disk and the permissions while the cause, one path in the way, went unnamed."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main


@pytest.mark.parametrize("argv", [["status", "staging"], ["down", "staging"], ["prune", "staging", "--keep-days", "30"],
                                  ["doctor", "--stack", "staging"]], ids=lambda argv: argv[0])
def test_a_file_in_place_of_a_stacks_directory_is_named_as_the_path_in_the_way(capsys, tmp_path: Path,
                                                                              argv: list[str]) -> None:
    home = tmp_path / "home"
    (home / "stacks").mkdir(parents=True)
    (home / "stacks" / "staging").write_text("not a directory\n")
    assert main([*argv, "--home", str(home)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("goldgate: error: Not a directory (")
    assert lines[0].endswith(f"; a file is where the state dir (--home, GOLDGATE_HOME) needs a directory: move "
                             f"{home / 'stacks' / 'staging'} out of the way")


def test_a_directory_in_place_of_the_ledger_is_named_as_the_path_in_the_way(capsys, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "ledger.jsonl").mkdir(parents=True)
    assert main(["history", "--home", str(home)]) == 1
    assert capsys.readouterr().err.splitlines() == [(
        f"goldgate: error: {home / 'ledger.jsonl'} is a directory, not a regular file: goldgate keeps the release "
        "ledger there; move it out of the way and restore the ledger from its backup (in CI, the release-ledger "
        "branch)")]

