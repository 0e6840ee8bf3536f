"""A workflow parameter that lets a client send what the ComfyUI input refuses is named at `goldgate build`.

An `integer` parameter with no max on KSampler's `steps` passed steps=10**9 through the service and the
worker, a `number` with no min on `cfg` passed cfg=-5, and a `string` with no choices on `sampler_name`
passed any name: ComfyUI refused each only when the job ran on the GPU (a cold start paid for nothing). The
warning says which bound (or choices) to write, from the input's own range or list."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from test_review19_lead_build_warns import build, worker_copy

from goldgate.local.comfyui.params import parameter_problems
from images.worker.workflows import parse_workflow

REPO = Path(__file__).resolve().parents[2]
SDXL = REPO / "images" / "worker" / "workflows" / "sdxl-txt2img.json"


def with_param(name: str, **fields: Any) -> dict[str, Any]:
    """The shipped sdxl-txt2img workflow, parameter `name`'s fields changed."""
    raw = copy.deepcopy(json.loads(SDXL.read_text()))
    next(p for p in raw["parameters"] if p["name"] == name).update(fields)
    return raw


def problems(raw: dict[str, Any]) -> list[str]:
    return parameter_problems(parse_workflow(raw, "test"))


def test_an_integer_parameter_with_no_min_or_max_is_told_the_inputs_range():
    found = problems(with_param("steps", min=None, max=None))
    assert len(found) == 2, found
    assert all("workflow sdxl-txt2img parameter steps (node 3 KSampler, input steps)" in line
               for line in found), found
    assert "no min" in found[0] and "INT input's min 1 " in found[0] and 'write "min": 1 or more' in found[0]
    assert "no max" in found[1] and "max 10000 " in found[1] and 'write "max": 10000 or less' in found[1]


def test_a_number_parameter_with_a_max_but_no_min_is_told_only_the_min():
    line, = problems(with_param("cfg", min=None))
    assert "parameter cfg" in line and "input cfg" in line and "no min" in line, line
    assert "FLOAT input's min 0 " in line and 'write "min": 0 or more' in line and "max" not in line, line


def test_a_parameter_with_choices_needs_no_bound_but_its_choices_must_fit_the_input():
    assert problems(with_param("width", min=None, max=None, choices=[512, 1024], default=512)) == []
    line, = problems(with_param("width", min=None, max=None, choices=[512, 20000, 8], default=512))
    assert "parameter width" in line and "choices 20000, 8" in line, line
    assert "INT input's min 16 and max 16384" in line and "512" not in line, line


def test_a_string_parameter_with_no_choices_on_a_combo_is_told_the_inputs_list():
    line, = problems(with_param("scheduler", choices=None))
    assert "parameter scheduler (node 3 KSampler, input scheduler)" in line and "no choices" in line, line
    assert 'write "choices" from the list (simple, sgm_uniform, karras,' in line and "kl_optimal)" in line
    line, = problems(with_param("sampler", choices=None))
    assert "no choices" in line and "(euler, euler_cfg_pp," in line and "... 32 more)" in line, line
    assert "uni_pc" not in line, line   # a long list is shortened


def test_a_model_file_parameter_with_no_choices_is_named():
    raw = json.loads(SDXL.read_text())
    raw["parameters"].append({"name": "checkpoint", "type": "string", "required": False,
                              "default": "sd_xl_base_1.0.safetensors", "min": None, "max": None,
                              "choices": None, "node": "4", "input": "ckpt_name"})
    line, = problems(raw)
    assert "parameter checkpoint" in line and "CheckpointLoaderSimple" in line and "no choices" in line, line
    assert "models/checkpoints" in line and "models.yaml" in line, line


def test_the_build_prints_the_missing_bound(tmp_path):
    context = worker_copy(tmp_path)
    path = context / "workflows" / "sdxl-txt2img.json"
    path.write_text(json.dumps(with_param("steps", max=None), indent=2))
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr     # a warning, not a refusal
    warned = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warned) == 1, done.stderr
    assert "parameter steps" in warned[0] and 'write "max": 10000 or less' in warned[0], warned[0]
