"""`goldgate down` run from another directory than the checkout that started the stacks (the state dir defaults to
./.goldgate) stops nothing: it must say so, not "down: prod, staging" while the stacks go on serving."""

from __future__ import annotations

from pathlib import Path

from goldgate.cli import main


def test_down_with_no_state_dir_says_nothing_was_stopped_and_where_it_looked(tmp_path: Path, capsys) -> None:
    home = tmp_path / "elsewhere" / ".goldgate"
    for stack in ("all", "staging"):
        assert main(["down", stack, "--home", str(home)]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [f"down: nothing to stop: no state dir at {home}"]
        assert "run it from the checkout that started them" in err
    assert not home.exists()  # looking created nothing
