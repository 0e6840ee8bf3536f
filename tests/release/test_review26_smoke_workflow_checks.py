"""What `goldgate build` (and so `release`) says of a workflow before any engine runs: a graph with no node that
saves an image is refused (ComfyUI answers `Prompt has no outputs`, or the worker finds no image to upload, for
every job of it), and a parameter default that is not the graph literal it replaces is warned about (a graph
re-exported from ComfyUI with a new literal changes nothing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.release.build import WORKER_DIR


def _context(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    context = tmp_path / "worker"
    shutil.copytree(WORKER_DIR, context, ignore=shutil.ignore_patterns("__pycache__"))
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    edit(workflow["graph"])
    path.write_text(json.dumps(workflow, indent=2))
    return context


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker engine is reached, here or on a machine that has one: a build that gets that far fails there."""
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")


def _warnings(err: str) -> list[str]:
    return [line.removeprefix("… ") for line in err.splitlines() if line.removeprefix("… ").startswith("warning:")]


def _docker_build(capsys: pytest.CaptureFixture, tmp_path: Path, context: Path) -> tuple[int, str, str]:
    # --engine docker: refused (or warned) before the engine is reached.
    return invoke(capsys, "build", "--home", str(tmp_path / "home"), "--context", str(context), "--engine", "docker",
                  "--repo", "127.0.0.1:9/goldgate-worker", "--workflow-version", "2026.11.0")


def _no_save(graph: dict) -> None:
    del graph["9"]


def _preview(graph: dict) -> None:
    graph["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}


@pytest.mark.parametrize("edit, named", [(_no_save, ""), (_preview, "PreviewImage keeps its images as temporary")])
def test_a_workflow_whose_graph_saves_no_image_is_refused_before_any_engine(
        capsys: pytest.CaptureFixture, tmp_path: Path, edit, named: str) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = _docker_build(capsys, tmp_path, _context(tmp_path, edit))
    assert code == 1
    assert "workflow sdxl-txt2img" in err and "has no node that saves an image" in err, err
    assert "Prompt has no outputs" in err and "SaveImage" in err and named in err
    assert "Docker engine" not in err


def test_a_graph_saving_through_a_custom_node_is_said_not_refused(capsys: pytest.CaptureFixture,
                                                                  tmp_path: Path) -> None:
    def custom(graph: dict) -> None:
        graph["9"] = {"class_type": "MySaveToBucket", "inputs": {"images": ["8", 0]}}

    code, _out, err = _docker_build(capsys, tmp_path, _context(tmp_path, custom))
    assert any(line.startswith("warning: workflow sdxl-txt2img has no SaveImage node: its jobs succeed only if one "
                               "of its custom nodes (MySaveToBucket) saves a PNG") for line in _warnings(err)), err
    assert "Docker engine" in err and code == 1     # it went on, to the engine this machine lacks


def test_a_parameter_default_that_overrides_the_graph_literal_is_warned_about(capsys: pytest.CaptureFixture,
                                                                             tmp_path: Path) -> None:
    def reexported(graph: dict) -> None:
        graph["3"]["inputs"]["steps"] = 30       # ComfyUI's new literal; the parameter still defaults to 25
        graph["3"]["inputs"]["cfg"] = 7          # 7 and 7.0 are one value: nothing to say

    _code, _out, err = _docker_build(capsys, tmp_path, _context(tmp_path, reexported))
    warned = [line for line in _warnings(err) if "defaults to" in line]
    assert warned == [("warning: workflow sdxl-txt2img parameter 'steps' defaults to 25, but the graph's node 3 input "
                       "'steps' holds 30: every job that leaves steps out runs with 25, whatever the graph says (a "
                       "re-export from ComfyUI changes nothing there); make the two agree")], err


def test_the_shipped_workflows_draw_no_such_word(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    _code, _out, err = _docker_build(capsys, tmp_path, _context(tmp_path, lambda _graph: None))
    assert not [w for w in _warnings(err) if "defaults to" in w or "SaveImage" in w], err
    assert "saves an image" not in err and "Docker engine" in err
