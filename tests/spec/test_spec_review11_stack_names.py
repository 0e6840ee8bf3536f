"""A cloud stack named with a path (`../prod`, `a/b`) or in capitals is refused as a stack name, in one line,
before it becomes part of a file path (it was reported as a missing "stacks/Pulumi.../prod.yaml")."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate import spec as specs
from goldgate.cli import main


@pytest.mark.parametrize("name", ["../prod", "staging/..", "a/b", "Staging", "/etc/passwd", "x"])
def test_a_cloud_command_refuses_a_name_that_is_not_a_stack_name(capsys, tmp_path: Path, name: str) -> None:
    code = main(["metrics", name, "--target", "cloud", "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [(f"goldgate: error: {name!r} is not a stack name (2-41 lowercase letters, digits "
                                 f"and dashes, first a letter: staging or prod); a cloud stack is {specs.STACKS_DIR}/"
                                 "Pulumi.<stack>.yaml")]


def test_the_name_is_checked_before_any_file_is_read(tmp_path: Path) -> None:
    # A directory named like the start of the path would otherwise be walked through to a file beyond it.
    (tmp_path / "Pulumi.x").mkdir()
    (tmp_path / "Pulumi.staging.yaml").write_text("config: {}\n")
    with pytest.raises(specs.SpecError, match="is not a stack name"):
        specs.load_pulumi("x/../staging", tmp_path)
