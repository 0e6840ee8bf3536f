"""`goldgate release --target local` with docker: `--engine docker` alone was told "--repo is required to build with
docker", and adding the --repo it asked for was then told "a local release runs a local snapshot: drop --repo". Any
of --repo and --engine docker on a local release gets that one refusal, naming what was given, before anything is
built, started or recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_build_reuse import _context
from test_cli_errors import one_error_line, run

REPO = "127.0.0.1:5000/worker"


@pytest.mark.parametrize(("extra", "drop"), [
    (["--engine", "docker"], "drop --engine docker,"),
    (["--repo", REPO], f"drop --repo {REPO},"),
    (["--engine", "docker", "--repo", REPO], f"drop --repo {REPO} and --engine docker,"),
    (["--engine", "local", "--repo", REPO], f"drop --repo {REPO},"),
], ids=["engine-docker-alone", "repo", "both", "engine-local-with-repo"])
def test_a_local_release_with_docker_gets_one_refusal_that_following_it_resolves(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str],
        drop: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # nothing may be asked of an engine
    ctx = _context(tmp_path)
    code, out, err = run(capsys, tmp_path / "home", "release", "--target", "local", "--context", str(ctx), *extra)
    assert code == 1 and out == ""
    said = one_error_line(err)
    assert "a local release runs a local snapshot" in said and drop in said and "--target cloud" in said, said
    assert "--repo is required" not in said
    assert not (tmp_path / "home" / "ledger.jsonl").exists()
    assert not (tmp_path / "home" / "stacks").exists()  # no stack was started
