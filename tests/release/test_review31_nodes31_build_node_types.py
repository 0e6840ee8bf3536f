"""`goldgate build` and custom_nodes.yaml: a node type an entry lists is known to the build; once the file declares
anything, a workflow node of a type nobody provides (not a node type goldgate knows, nor an entry's `nodes`, nor
`core_nodes`) is refused, naming the workflow, the node and the type, before anything is built: ComfyUI would refuse
every job of it on the GPU (`Node '<type>' not found`). A file that declares nothing refuses nothing (what built before
builds), and an invalid file is refused naming the field. Run as the CLI, against a scratch home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_review19_lead_build_warns import build, worker_copy

from goldgate.release.build import BuildFailed, ReleaseIdentity, build_docker

PIN = "0123456789abcdef0123456789abcdef01234567"


def _declare(context: Path, entries: list[dict], core: list[str] | None = None) -> None:
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "custom_nodes": entries,
                                                               "core_nodes": core or []}))


def _save_node_as(context: Path, class_type: str) -> None:
    """sdxl-txt2img's SaveImage (node 9) replaced by a custom node, as a team's export has it."""
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    workflow["graph"]["9"]["class_type"] = class_type
    path.write_text(json.dumps(workflow))


def test_a_node_type_nobody_provides_is_refused_once_custom_nodes_yaml_declares_any(tmp_path):
    context = worker_copy(tmp_path)
    _save_node_as(context, "Image Save")
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr      # declaring nothing refuses nothing: what built before builds

    _declare(context, [{"url": "https://example.invalid/team/upscale.git", "commit": PIN, "nodes": ["Upscale X"]}])
    done = build(context, tmp_path / "home")
    assert done.returncode != 0
    assert "workflow sdxl-txt2img" in done.stderr and "node 9 has type 'Image Save'" in done.stderr
    assert "custom_nodes.yaml" in done.stderr and "nothing was built" in done.stderr

    _declare(context, [{"url": "https://example.invalid/was/was-node-suite.git", "commit": PIN,
                        "nodes": ["Image Blur", "Image Save"]}])
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr      # an entry's `nodes` makes the type known


def test_a_core_node_goldgate_does_not_list_is_known_through_core_nodes(tmp_path):
    context = worker_copy(tmp_path)
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    workflow["graph"]["20"] = {"class_type": "FluxGuidance", "inputs": {"conditioning": ["6", 0], "guidance": 3.5}}
    path.write_text(json.dumps(workflow))
    _declare(context, [{"url": "https://example.invalid/team/upscale.git", "commit": PIN, "nodes": ["Upscale X"]}])
    done = build(context, tmp_path / "home")
    assert done.returncode != 0 and "node 20 has type 'FluxGuidance'" in done.stderr

    _declare(context, [{"url": "https://example.invalid/team/upscale.git", "commit": PIN, "nodes": ["Upscale X"]}],
             core=["FluxGuidance"])
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("commit", "said"), [("main", "branch or tag"), ("0123abc", "abbreviated")])
def test_a_custom_node_pinned_to_a_branch_or_a_short_sha_is_refused_at_the_build(tmp_path, commit, said):
    context = worker_copy(tmp_path)
    _declare(context, [{"url": "https://example.invalid/team/upscale.git", "commit": commit}])
    done = build(context, tmp_path / "home")
    assert done.returncode != 0
    assert "custom_nodes[0] (upscale).commit" in done.stderr and said in done.stderr


def test_a_docker_build_is_refused_before_the_engine_is_asked(tmp_path):
    class NoEngine:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the engine was asked ({name}) before the workflows were judged")

    context = worker_copy(tmp_path)
    _save_node_as(context, "Mystery Save")
    _declare(context, [{"url": "https://example.invalid/team/upscale.git", "commit": PIN, "nodes": ["Upscale X"]}])
    identity = ReleaseIdentity("2026.11.0", "a" * 40, "b" * 64)
    with pytest.raises(BuildFailed, match=r"node 9 has type 'Mystery Save'.*add the custom node"):
        build_docker(NoEngine(), context, "127.0.0.1:5000/goldgate-worker", identity)


def test_a_docker_build_whose_dockerfile_never_installs_the_custom_nodes_is_refused(tmp_path):
    class NoEngine:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the engine was asked ({name}) before the Dockerfile was read")

    context = worker_copy(tmp_path)
    _save_node_as(context, "Image Save")
    _declare(context, [{"url": "https://example.invalid/was/was-node-suite.git", "commit": PIN,
                        "nodes": ["Image Save"]}])
    dockerfile = context / "Dockerfile"
    # A Dockerfile from before custom_nodes.yaml: its custom node lines gone.
    dockerfile.write_text("".join(line for line in dockerfile.read_text().splitlines(keepends=True)
                                  if "custom_nodes" not in line))
    identity = ReleaseIdentity("2026.11.0", "a" * 40, "b" * 64)
    with pytest.raises(BuildFailed, match=r"lists 1 custom node\(s\) \(was-node-suite\), but .*Dockerfile never "
                                          r"installs them"):
        build_docker(NoEngine(), context, "127.0.0.1:5000/goldgate-worker", identity)
