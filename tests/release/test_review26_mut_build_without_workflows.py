"""A docker build context without workflows/ is built as before: its Dockerfile may take the workflow files from
elsewhere, so the check of the worker's workflow files (which refuses one the worker refuses, before any engine)
has nothing to read and refuses nothing; the build goes on to the engine."""

from __future__ import annotations

import shutil
from pathlib import Path

from test_review19_lead_build_warns import worker_copy

from goldgate import cli


def test_a_docker_build_of_a_context_without_workflows_goes_on_to_the_engine(tmp_path: Path, capsys,
                                                                           monkeypatch) -> None:
    context = worker_copy(tmp_path)
    shutil.rmtree(context / "workflows")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")  # the engine is never reached
    code = cli.main(["build", "--repo", "registry.test/goldgate-worker", "--context", str(context), "--home",
                     str(tmp_path / "home"), "--workflow-version", "2026.11.0"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach a Docker engine" in err, err  # the build got as far as the engine
    assert "cannot build a worker image" not in err, err
