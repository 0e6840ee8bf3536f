"""A workflow author who mistypes a custom node's type (`TinyUpscal` in the workflow, `TinyUpscale` under the
entry's `nodes` in custom_nodes.yaml) is refused by `goldgate build`; the refusal should point at the near miss the
file does declare, as the quickest fix is the typo, not a new entry. Run as the CLI, against a scratch home."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from test_review19_lead_build_warns import build, worker_copy

PIN = "0123456789abcdef0123456789abcdef01234567"


def _upscale_node_typed(context: Path, class_type: str) -> None:
    """sdxl-txt2img with an upscaler between its VAEDecode (8) and SaveImage (9), as a team's export has it."""
    path = context / "workflows" / "sdxl-txt2img.json"
    workflow = json.loads(path.read_text())
    workflow["graph"]["10"] = {"class_type": class_type, "inputs": {"image": ["8", 0], "scale_by": 2.0}}
    workflow["graph"]["9"]["inputs"]["images"] = ["10", 0]
    path.write_text(json.dumps(workflow))


def test_a_mistyped_custom_node_type_is_refused_naming_the_declared_type_it_nearly_matches(tmp_path):
    context = worker_copy(tmp_path)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": [], "custom_nodes": [
        {"name": "tiny-upscaler", "url": "https://example.invalid/team/tiny-upscaler.git", "commit": PIN,
         "nodes": ["TinyUpscale"]}]}))
    _upscale_node_typed(context, "TinyUpscal")
    done = build(context, tmp_path / "home")
    assert done.returncode != 0
    assert "node 10 has type 'TinyUpscal'" in done.stderr
    # what the author needs to see: the type the file declares, and which entry, so the typo is found at once
    assert "'TinyUpscale'" in done.stderr and "tiny-upscaler" in done.stderr
