"""What `goldgate build` says and refuses before any engine is asked: a docker build is not warned about the local
ComfyUI emulator (its image never runs there), and image repository names are held to docker's own grammar and
length (the build used to refuse names docker takes, and to take names docker refuses only after the build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_review19_lead_build_warns import worker_copy

from goldgate import cli
from goldgate.release.build import BuildFailed, check_repo


def test_a_docker_build_is_not_warned_about_the_local_emulators_node_types(tmp_path: Path, capsys,
                                                                            monkeypatch) -> None:
    context = worker_copy(tmp_path)
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    save = next(k for k, node in workflow["graph"].items() if node["class_type"] == "SaveImage")
    workflow["graph"][save]["class_type"] = "Image Save"   # a custom node the cloud image may well have
    path.write_text(json.dumps(workflow))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")   # the engine is never reached
    code = cli.main(["build", "--repo", "registry.test/goldgate-worker", "--context", str(context), "--home",
                     str(tmp_path / "home"), "--workflow-version", "2026.11.0"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach a Docker engine" in err, err   # the build got as far as the engine
    assert "emulator does not run" not in err


@pytest.mark.parametrize("repo", ["registry.test/my--worker", "registry.test/team__ml/worker",
                                  "127.0.0.1:5000/" + "a" * (255 - len("127.0.0.1:5000/"))])
def test_a_repository_name_docker_takes_is_taken(repo: str) -> None:
    check_repo(repo)


def test_a_repository_name_longer_than_docker_takes_is_refused() -> None:
    with pytest.raises(BuildFailed, match="is not an image repository name"):
        check_repo("127.0.0.1:5000/" + "a" * (256 - len("127.0.0.1:5000/")))


def test_a_docker_build_refuses_a_workflow_file_the_worker_refuses_before_the_engine(tmp_path: Path, capsys,
                                                                                     monkeypatch) -> None:
    """A docker build never reads the workflow files, so one the worker refuses (here a choice its own parameter
    refuses) went into the image, and every worker built from it failed at start, seen only on STAGING."""
    context = worker_copy(tmp_path)
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    sampler = next(p for p in workflow["parameters"] if p["choices"])
    sampler["choices"].append(3)
    path.write_text(json.dumps(workflow))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    code = cli.main(["build", "--repo", "registry.test/goldgate-worker", "--context", str(context), "--home",
                     str(tmp_path / "home"), "--workflow-version", "2026.11.0"])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot build a worker image from {context}" in err, err
    assert f"({sampler['name']}).choices[{len(sampler['choices']) - 1}] must be a string, got int" in err, err
    assert "Docker engine" not in err, err
