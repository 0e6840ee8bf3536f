"""Review 30 (rel2): `goldgate build` refuses a workflow with a link between nodes of different types, as ComfyUI
refuses every job of it at validation ("Return type mismatch between linked nodes"). A VAEDecode whose `vae` was wired
to CheckpointLoaderSimple's CLIP output built without a word, and every job of it failed. Run as the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from test_review19_lead_build_warns import build, worker_copy


def test_a_vae_input_linked_to_a_clip_output_is_refused_by_name(tmp_path: Path) -> None:
    context = worker_copy(tmp_path)
    path = context / "workflows" / "sdxl-txt2img.json"
    raw = json.loads(path.read_text())
    assert raw["graph"]["8"]["class_type"] == "VAEDecode" and raw["graph"]["4"]["inputs"]
    raw["graph"]["8"]["inputs"]["vae"] = ["4", 1]          # CheckpointLoaderSimple's outputs: MODEL, CLIP, VAE
    path.write_text(json.dumps(raw, indent=2))
    done = build(context, tmp_path / "home")
    assert done.returncode == 1, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    for word in (str(path), "node 8 (VAEDecode)", "input 'vae' takes VAE", "node 4 (CheckpointLoaderSimple) output 1",
                 "a CLIP", "Return type mismatch between linked nodes", "nothing was built"):
        assert word in error, error
    assert "flux" not in error                            # the other, unbroken workflow is not named
    assert not (tmp_path / "home" / "images").exists() or not any((tmp_path / "home" / "images").iterdir())
