"""A local build warns of a workflow whose node types the local target's ComfyUI emulator does not run: every job
of it would fail on a local stack, and its golden cases with them, so the build is where that is said first. A
warning, not a refusal: the image's other workflows run locally, and a real ComfyUI may have the node.
Run as the CLI, against a scratch home."""

from __future__ import annotations

import json

from test_review19_lead_build_warns import build, worker_copy


def test_a_workflow_with_a_node_type_the_emulator_lacks_is_named_at_the_local_build(tmp_path):
    context = worker_copy(tmp_path)
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "emulator does not run" not in done.stderr   # the shipped workflows run on the local target

    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    save = next(k for k, node in workflow["graph"].items() if node["class_type"] == "SaveImage")
    workflow["graph"][save]["class_type"] = "Image Save"   # a custom node (WAS suite), as a team's export has it
    path.write_text(json.dumps(workflow))
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr               # a warning, not a refusal
    [warned] = [line for line in done.stderr.splitlines() if "emulator does not run" in line]
    assert "warning: workflow sdxl-txt2img" in warned and "(Image Save)" in warned and "--target cloud" in warned
