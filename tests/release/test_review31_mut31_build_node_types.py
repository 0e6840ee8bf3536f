"""`goldgate build`'s node type check (check_node_types) at its edges, found by a mutation audit: a custom_nodes.yaml
that lists only `core_nodes` declares something, so a node type nobody provides is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_review19_lead_build_warns import worker_copy

from goldgate.release.build import BuildFailed, check_node_types


def _use_node(context: Path, node_id: str, class_type: str) -> None:
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    workflow["graph"][node_id] = {"class_type": class_type, "inputs": {"conditioning": ["6", 0]}}
    path.write_text(json.dumps(workflow))


def test_a_file_with_core_nodes_alone_still_refuses_a_node_type_nobody_provides(tmp_path: Path) -> None:
    context = worker_copy(tmp_path)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": ["FluxGuidance"]}))
    _use_node(context, "20", "FluxGuidance")
    check_node_types(context)   # listed under core_nodes: the image's ComfyUI has it
    _use_node(context, "21", "Image Save")
    with pytest.raises(BuildFailed, match=r"workflow sdxl-txt2img .*node 21 has type 'Image Save'.*nothing was built"):
        check_node_types(context)


def test_every_unprovided_node_is_counted_the_first_two_named(tmp_path: Path) -> None:
    context = worker_copy(tmp_path)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": ["FluxGuidance"]}))
    for node_id, class_type in (("21", "Image Save"), ("22", "Image Blur"), ("23", "Upscale X")):
        _use_node(context, node_id, class_type)
    with pytest.raises(BuildFailed) as caught:
        check_node_types(context)
    said = str(caught.value)
    assert "node 21 has type 'Image Save'" in said and "node 22 has type 'Image Blur'" in said, said
    assert "(and 1 more)" in said, said


def test_a_workflow_that_does_not_load_is_left_to_the_builds_own_check(tmp_path: Path) -> None:
    context = worker_copy(tmp_path)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": ["FluxGuidance"]}))
    (context / "workflows" / "sdxl-txt2img.json").write_text("{ not json")
    check_node_types(context)   # no traceback here: the build's workflow check names the file and the fault


def test_the_dockerfile_step_check_wants_the_install_command_and_only_when_a_node_is_listed(tmp_path: Path) -> None:
    from goldgate.release.build import check_custom_nodes_installed

    context = worker_copy(tmp_path)
    dockerfile = context / "Dockerfile"
    text = "\n".join(line for line in dockerfile.read_text().splitlines() if "custom_nodes.py install" not in line)
    dockerfile.write_text(text + "\n")
    assert "COPY custom_nodes.py" in text   # the file is still copied in: copying is not installing
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": ["FluxGuidance"]}))
    check_custom_nodes_installed(context)   # nothing to install: a Dockerfile without the step builds
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "custom_nodes": [
        {"url": "https://example.invalid/team/upscale.git", "commit": "0123456789abcdef" * 2 + "01234567"}]}))
    with pytest.raises(BuildFailed, match=r"lists 1 custom node\(s\) \(upscale\), but .*Dockerfile never installs"):
        check_custom_nodes_installed(context)
