"""models.yaml and the workflows: each model a workflow loads is baked where its loader reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from worker_harness import FIXTURES, WORKER_DIR

from images.worker.manifest import (
    ManifestError,
    check_consistency,
    load_manifest,
    parse_manifest,
)
from images.worker.workflows import (
    InputError,
    WorkflowError,
    build_graph,
    load_workflows,
    parse_workflow,
    resolve_inputs,
)


def shipped():
    return load_manifest(WORKER_DIR / "models.yaml"), load_workflows(WORKER_DIR / "workflows")


def test_shipped_workflows_and_manifest_are_consistent():
    manifest, workflows = shipped()
    report = check_consistency(manifest, workflows)
    assert report.ok, report.errors
    assert report.unused_models == ()
    assert {"sdxl-txt2img", "flux-schnell-lora"} <= set(workflows)


def test_shipped_workflows_cover_a_checkpoint_and_a_split_unet_clip_vae_lora_graph():
    _, workflows = shipped()
    classes = {wid: {n["class_type"] for n in w.graph.values()} for wid, w in workflows.items()}
    assert "CheckpointLoaderSimple" in classes["sdxl-txt2img"]
    assert {"UNETLoader", "DualCLIPLoader", "VAELoader", "LoraLoaderModelOnly"} <= classes["flux-schnell-lora"]


def test_every_shipped_model_has_a_source_and_pinned_ones_a_real_sha256():
    manifest, _ = shipped()
    for model in manifest.models:
        assert model.source_url.startswith("https://huggingface.co/")
        assert (model.size is None) == (model.sha256 is None), model.file


def test_the_check_fails_on_a_workflow_naming_a_model_missing_from_the_manifest():
    report = check_consistency(load_manifest(FIXTURES / "missing-model" / "models.yaml"),
                               load_workflows(FIXTURES / "missing-model" / "workflows"))
    assert not report.ok
    assert any("'juggernautXL_v9.safetensors', which is not in models.yaml" in e for e in report.errors)
    assert "checkpoints/sd_xl_base_1.0.safetensors" in report.unused_models


def test_the_check_fails_on_a_unet_model_used_with_the_checkpoint_loader():
    manifest, workflows = shipped()
    raw = json.loads((WORKER_DIR / "workflows" / "sdxl-txt2img.json").read_text())
    raw["graph"]["4"]["inputs"]["ckpt_name"] = "flux1-schnell.safetensors"
    workflows["sdxl-txt2img"] = parse_workflow(raw)
    report = check_consistency(manifest, workflows)
    assert any("bakes at diffusion_models/flux1-schnell.safetensors" in e and "UNETLoader" in e
               for e in report.errors)


def test_the_check_covers_model_names_a_parameter_can_choose():
    manifest, workflows = shipped()
    raw = json.loads((WORKER_DIR / "workflows" / "sdxl-txt2img.json").read_text())
    raw["parameters"].append({"name": "checkpoint", "type": "string", "required": False,
                              "default": "sd_xl_base_1.0.safetensors", "min": None, "max": None,
                              "choices": ["sd_xl_base_1.0.safetensors", "other.safetensors"],
                              "node": "4", "input": "ckpt_name"})
    workflows["sdxl-txt2img"] = parse_workflow(raw)
    assert any("'other.safetensors'" in e for e in check_consistency(manifest, workflows).errors)


def test_an_unknown_loader_is_an_error_not_a_silent_pass():
    manifest, workflows = shipped()
    raw = json.loads((WORKER_DIR / "workflows" / "sdxl-txt2img.json").read_text())
    raw["graph"]["20"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "x.safetensors"}}
    workflows["sdxl-txt2img"] = parse_workflow(raw)
    assert any("ControlNetLoader is a loader this worker does not know" in e
               for e in check_consistency(manifest, workflows).errors)


def test_unpinned_models_are_reported_as_warnings():
    manifest, workflows = shipped()
    warnings = check_consistency(manifest, workflows).warnings
    unpinned = [m.relative_path for m in manifest.models if not m.pinned]
    assert all(any(p in w for w in warnings) for p in unpinned)


MANIFEST_FAULTS = [
    ({"models": [{"file": "a.safetensors", "kind": "checkpoint", "directory": "unet", "size": 1,
                  "sha256": None, "source_url": "https://x"}]}, "is not read by a checkpoint loader"),
    ({"models": [{"file": "a.safetensors", "kind": "vae", "directory": "vae", "size": 1,
                  "sha256": "XYZ", "source_url": "https://x"}]}, "sha256 must be 64 lowercase hex"),
    ({"models": [{"file": "../a", "kind": "vae", "directory": "vae", "size": 1,
                  "sha256": None, "source_url": "https://x"}]}, "must be a plain file name"),
    ({"models": [{"file": "a.safetensors", "kind": "vae", "directory": "vae", "size": 1,
                  "sha256": None}]}, "lacks 'source_url'"),
    ({"models": [{"file": "a.safetensors", "kind": "vae", "directory": "vae", "size": -1,
                  "sha256": None, "source_url": "https://x"}]}, "size must be a positive number"),
    (["not", "a", "mapping"], "expected a mapping with a 'models' list"),
]


@pytest.mark.parametrize(("raw", "expected"), MANIFEST_FAULTS, ids=[e for _, e in MANIFEST_FAULTS])
def test_malformed_manifest_entries_are_named(raw, expected):
    with pytest.raises(ManifestError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_manifest(raw)


def test_unreadable_manifest_is_a_clear_error(tmp_path: Path):
    (tmp_path / "models.yaml").write_text("models: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(tmp_path / "models.yaml")
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "missing.yaml")


def _raw_workflow():
    return json.loads((WORKER_DIR / "workflows" / "sdxl-txt2img.json").read_text())


def _mutate(change):
    raw = _raw_workflow()
    change(raw)
    return raw


WORKFLOW_FAULTS = [
    (lambda r: r.update(version="sdxl-txt2img@1"), "version must be 'sdxl-txt2img@<major>.<minor>.<patch>'"),
    (lambda r: r["parameters"][0].update(node="99"), "is not a node of the graph"),
    (lambda r: r["parameters"][0].update(input="nope"), "is not an input of node 6"),
    (lambda r: r["parameters"][0].pop("choices"), "lacks \\['choices'\\]"),
    (lambda r: r["parameters"][1].update(default=None), "is optional, so it needs a default"),
    (lambda r: r["parameters"][2].update(default=99999), "default must be <= 2048"),
    (lambda r: r["parameters"][0].update(type="float"), "type must be one of"),
    (lambda r: r["graph"]["3"]["inputs"].update(model=["42", 0]), "links to \\['42', 0\\]"),
    (lambda r: r["parameters"][0].update(input="clip"), "which is a link, not a value"),
    (lambda r: r["parameters"].append(copy.deepcopy(r["parameters"][0])), "parameter names repeat"),
]


@pytest.mark.parametrize(("change", "expected"), WORKFLOW_FAULTS, ids=[e for _, e in WORKFLOW_FAULTS])
def test_malformed_workflows_are_named(change, expected):
    with pytest.raises(WorkflowError, match=expected):
        parse_workflow(_mutate(change), "wf.json")


def test_a_workflow_file_named_after_another_id_is_refused(tmp_path: Path):
    (tmp_path / "other.json").write_text(json.dumps(_raw_workflow()))
    with pytest.raises(WorkflowError, match="file name must be sdxl-txt2img.json"):
        load_workflows(tmp_path)
    (tmp_path / "other.json").write_text("{not json")
    with pytest.raises(WorkflowError, match="not valid JSON"):
        load_workflows(tmp_path)


def test_inputs_fill_defaults_and_land_in_their_node_inputs():
    workflow = parse_workflow(_raw_workflow())
    values = resolve_inputs(workflow, {"prompt": "a cat", "seed": 3, "cfg": 5})
    graph = build_graph(workflow, values)
    assert graph["6"]["inputs"]["text"] == "a cat"
    assert graph["3"]["inputs"]["seed"] == 3 and graph["3"]["inputs"]["cfg"] == 5
    assert graph["5"]["inputs"]["width"] == 1024
    assert workflow.graph["6"]["inputs"]["text"] == ""  # the shipped graph is never mutated


def test_nan_and_nul_inputs_are_refused():
    workflow = parse_workflow(_raw_workflow())
    with pytest.raises(InputError, match="finite"):
        resolve_inputs(workflow, {"prompt": "x", "cfg": float("nan")})
    with pytest.raises(InputError, match="NUL"):
        resolve_inputs(workflow, {"prompt": "a\x00b"})
