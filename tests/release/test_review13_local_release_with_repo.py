"""`goldgate release --repo` on the local target: a local stack runs only snapshots of this home, so the pushed image
was refused at STAGING's deploy, after the many-GB build and its push. It is refused before anything is built,
started or recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_build_reuse import _context
from test_cli_errors import one_error_line, run


@pytest.mark.parametrize("extra", [["--repo", "127.0.0.1:5000/worker"],
                                   ["--engine", "docker", "--repo", "127.0.0.1:5000/worker"]],
                         ids=["repo", "docker-engine"])
def test_a_local_release_of_a_pushed_image_is_refused_before_the_build(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # nothing may be asked of an engine
    ctx = _context(tmp_path)
    code, out, err = run(capsys, tmp_path / "home", "release", "--context", str(ctx), *extra)
    assert code == 1 and out == ""
    said = one_error_line(err)
    assert "a local release runs a local snapshot" in said and "--target cloud" in said
    assert not (tmp_path / "home" / "ledger.jsonl").exists()
    assert not (tmp_path / "home" / "stacks").exists()  # no stack was started
