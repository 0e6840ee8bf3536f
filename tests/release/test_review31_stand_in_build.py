"""`goldgate build` and a custom node's `emulate:` stand-in: a type with a valid stand-in runs on a local stack, so the
build no longer warns that the local emulator cannot run it; a stand-in the emulator would refuse is refused at the
build, naming why, instead of first failing a job on the local stack. Run as the CLI, against a scratch home."""

from __future__ import annotations

import yaml
from test_review19_lead_build_warns import build, worker_copy
from test_review31_wfj31_node_type_typo import PIN, _upscale_node_typed


def _declare(context, emulate):
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": [], "custom_nodes": [
        {"name": "tiny-upscaler", "url": "https://example.invalid/team/tiny-upscaler.git", "commit": PIN,
         "nodes": ["TinyUpscale"], "requirements": "none", "emulate": emulate}]}))
    _upscale_node_typed(context, "TinyUpscale")


def test_a_type_with_a_stand_in_is_built_without_the_local_emulator_warning(tmp_path):
    context = worker_copy(tmp_path)
    _declare(context, {"TinyUpscale": {"inputs": {"image": "IMAGE", "scale_by": ["FLOAT", {"min": 1, "max": 4}]},
                                       "outputs": ["IMAGE"]}})
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "does not run" not in done.stderr and "TinyUpscale" not in done.stderr, done.stderr


def test_a_stand_in_the_emulator_would_refuse_is_refused_at_the_build(tmp_path):
    context = worker_copy(tmp_path)
    _declare(context, {"TinyUpscale": {"inputs": {"scale_by": "FLOAT"}, "outputs": ["IMAGE"]}})  # no IMAGE input
    done = build(context, tmp_path / "home")
    assert done.returncode != 0
    assert "TinyUpscale" in done.stderr and "nothing was built" in done.stderr, done.stderr
