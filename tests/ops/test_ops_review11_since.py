"""`goldgate metrics --since` that is not a time is a usage error (exit 2) naming --since, as --keep-days is,
and it is caught first: not after "no database" on a fresh home, nor after the cloud was asked for the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.cli import main


@pytest.mark.parametrize("target", ["local", "cloud"])
@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "9999-12-31T23:59:59-01:00", " "])
def test_a_since_that_is_not_a_time_is_a_usage_error_before_anything_is_read(capsys, tmp_path: Path, target: str,
                                                                             since: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["metrics", "staging", "--target", target, "--home", str(tmp_path), "--since", since])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.splitlines()[-1].startswith("goldgate metrics: error: argument --since: "), err
    assert not (tmp_path / "stacks").exists()
