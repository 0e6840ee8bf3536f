"""Preflight ("first aid"): the model tree checked against models.yaml and the workflows."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from worker_harness import REPO, WORKER_DIR, bake_models, validate_log_lines

from images.worker.comfy_client import PromptRejected
from images.worker.first_aid import explain_rejection
from images.worker.logs import WorkerLog
from images.worker.preflight import log_report, run_preflight

MANIFEST = WORKER_DIR / "models.yaml"
WORKFLOWS = WORKER_DIR / "workflows"


def test_a_complete_sparse_tree_passes_on_size_and_logs_models_loaded(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    report = run_preflight(MANIFEST, WORKFLOWS, [tmp_path / "absent", models])
    assert report.ok, report.problems
    assert str(models / "checkpoints" / "sd_xl_base_1.0.safetensors") in report.loaded_models()
    stream = io.StringIO()
    log_report(report, WorkerLog(stream, stack="local"))
    [line] = validate_log_lines(stream.getvalue())
    assert line["event"] == "models_loaded"
    assert len(line["data"]["models"]) == len(report.models)
    assert report.render() == report.render_text() and "OK" in report.render()
    assert report.to_dict() == report.to_json()


def test_a_missing_file_names_it_and_the_directories_searched(tmp_path: Path):
    models = bake_models(tmp_path / "models", skip=("clip_l.safetensors",))
    report = run_preflight(MANIFEST, WORKFLOWS, [models, tmp_path / "other"])
    assert not report.ok
    [problem] = [p for p in report.problems if "clip_l" in p]
    assert f"searched {models / 'text_encoders'}, {tmp_path / 'other' / 'text_encoders'}" in problem
    assert "FAILED" in report.render_text() and "rebuild it with the models baked in" in report.render_text()


def test_a_truncated_file_fails_on_size(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    with (models / "vae" / "ae.safetensors").open("r+b") as f:
        f.truncate(1000)
    report = run_preflight(MANIFEST, WORKFLOWS, [models])
    [check] = [m for m in report.models if m.file == "ae.safetensors"]
    assert check.status == "wrong_size" and check.actual_size == 1000


def test_a_file_in_the_wrong_directory_is_pointed_at(tmp_path: Path):
    models = bake_models(tmp_path / "models", skip=("flux1-schnell.safetensors",))
    (models / "checkpoints" / "flux1-schnell.safetensors").write_bytes(b"x")
    report = run_preflight(MANIFEST, WORKFLOWS, [models])
    assert any(f"found in another directory: {models / 'checkpoints' / 'flux1-schnell.safetensors'}" in p
               for p in report.problems)


def test_no_model_root_at_all_says_models_were_not_baked(tmp_path: Path):
    report = run_preflight(MANIFEST, WORKFLOWS, [tmp_path / "comfyui" / "models"])
    assert report.problems[0].startswith("no model root exists")
    assert any("loader folder checkpoints is empty" in p for p in report.problems)


def _small_tree(tmp_path: Path, content: bytes, recorded: bytes) -> tuple[Path, Path, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = tmp_path / "models.yaml"
    manifest.write_text(yaml.safe_dump({"models": [{
        "file": "sd_xl_base_1.0.safetensors", "kind": "checkpoint", "directory": "checkpoints",
        "size": len(recorded), "sha256": hashlib.sha256(recorded).hexdigest(), "source_url": "https://example"}]}))
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "sdxl-txt2img.json").write_text((WORKFLOWS / "sdxl-txt2img.json").read_text())
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(content)
    return manifest, workflows, models


def test_sha256_is_checked_only_on_request(tmp_path: Path):
    manifest, workflows, models = _small_tree(tmp_path, b"AAAA", b"BBBB")
    assert run_preflight(manifest, workflows, [models]).ok
    report = run_preflight(manifest, workflows, [models], verify_sha256=True)
    assert [m.status for m in report.models] == ["sha256_mismatch"]
    good_manifest, good_workflows, good_models = _small_tree(tmp_path / "good", b"AAAA", b"AAAA")
    assert run_preflight(good_manifest, good_workflows, [good_models], verify_sha256=True).ok


def test_a_broken_manifest_or_workflow_dir_is_a_finding_not_a_traceback(tmp_path: Path):
    (tmp_path / "models.yaml").write_text(": : :")
    report = run_preflight(tmp_path / "models.yaml", tmp_path / "nowhere", [tmp_path])
    assert not report.ok
    assert any("not valid YAML" in p for p in report.problems)
    assert any("workflow directory" in p for p in report.problems)
    json.dumps(report.to_json())


def _cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "images.worker.preflight", *args], check=False, cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_prints_json_and_exits_by_outcome(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    ok = _cli("--json", "--model-roots", str(models))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    (models / "loras" / "flux_realism_lora.safetensors").unlink()
    failed = _cli("--model-roots", str(models))
    assert failed.returncode == 1
    assert "flux_realism_lora.safetensors" in failed.stderr
    [line] = validate_log_lines(failed.stdout)
    assert line["event"] == "preflight_failed"


def test_the_cli_reads_model_roots_from_the_environment(tmp_path: Path):
    models = bake_models(tmp_path / "models")
    result = _cli("--json", env_extra={"MODEL_ROOTS": f"{tmp_path / 'x'}:{models}"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model_roots"] == [str(tmp_path / "x"), str(models)]
    bad = _cli(env_extra={"COMFY_READY_TIMEOUT_S": "later"})
    assert bad.returncode == 2 and "COMFY_READY_TIMEOUT_S" in bad.stderr


def test_a_placeholder_file_is_not_counted_as_a_model(tmp_path: Path):
    # ComfyUI's own tree ships models/checkpoints/put_checkpoints_here; its loaders list model files only.
    models = bake_models(tmp_path / "models", skip=("sd_xl_base_1.0.safetensors",))
    (models / "checkpoints").mkdir(exist_ok=True)
    (models / "checkpoints" / "put_checkpoints_here").write_bytes(b"")
    (models / "checkpoints" / "README.txt").write_text("models go here")
    report = run_preflight(MANIFEST, WORKFLOWS, [models])
    [checkpoints] = [d for d in report.loader_dirs if d.folder == "checkpoints"]
    assert (checkpoints.files, checkpoints.ok) == (0, False)
    assert any(p.startswith("loader folder checkpoints is empty") for p in report.problems)
    assert "[EMPTY] loader folder checkpoints" in report.render_text()


def _rejected_checkpoint(input_config) -> PromptRejected:
    return PromptRejected({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                           "details": "", "extra_info": {}},
                          {"4": {"class_type": "CheckpointLoaderSimple", "dependent_outputs": ["9"], "errors": [
                              {"type": "value_not_in_list", "message": "Value not in list",
                               "details": "ckpt_name: 'sd_xl_base_1.0.safetensors' not in []",
                               "extra_info": {"input_name": "ckpt_name", "input_config": input_config,
                                              "received_value": "sd_xl_base_1.0.safetensors"}}]}})


def test_first_aid_reads_an_empty_combo_list_in_either_of_comfyuis_shapes(tmp_path: Path):
    # A V1 node sends its input spec as [[files...], {...}]; a node written against ComfyUI's V3 schema
    # as ["COMBO", {"options": [files...]}]. An empty list is "no checkpoints" in both.
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}}}
    for config in ([[], {}], ["COMBO", {"options": []}]):
        message = explain_rejection(_rejected_checkpoint(config), graph, (str(tmp_path),))
        assert "No checkpoint models appear to be available" in message, (config, message)
        assert "lists nothing" in message
    listed = explain_rejection(_rejected_checkpoint(["COMBO", {"options": ["other.safetensors"]}]), graph,
                               (str(tmp_path),))
    assert "lists ['other.safetensors']" in listed and "No checkpoint models" not in listed


def test_first_aid_does_not_call_the_loaders_own_directory_one_it_does_not_read(tmp_path: Path):
    # The file sits where the loader looks under the worker's roots, yet ComfyUI listed nothing: ComfyUI
    # reads another model root. Telling the operator to move the file out of the right directory is wrong.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(b"x")
    graph = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}}}
    message = explain_rejection(_rejected_checkpoint([[], {}]), graph, (str(tmp_path),))
    assert "does not read" not in message, message
    assert f"{tmp_path / 'checkpoints' / 'sd_xl_base_1.0.safetensors'}" in message
    assert "ComfyUI reads another model root" in message


def test_the_report_says_no_checkpoints_only_when_the_checkpoint_folder_is_empty(tmp_path: Path):
    # "No checkpoint models appear to be available" is the phrase operators search for; the report uses
    # it when the checkpoint loader would list nothing, and not for a missing LoRA.
    no_checkpoint = run_preflight(MANIFEST, WORKFLOWS, [bake_models(tmp_path / "a",
                                                                    skip=("sd_xl_base_1.0.safetensors",))])
    assert "No checkpoint models appear to be available" in no_checkpoint.render_text()
    stream = io.StringIO()
    log_report(no_checkpoint, WorkerLog(stream, stack="local"))
    [line] = validate_log_lines(stream.getvalue())
    assert "No checkpoint models appear to be available" in line["message"]
    no_lora = run_preflight(MANIFEST, WORKFLOWS, [bake_models(tmp_path / "b",
                                                              skip=("flux_realism_lora.safetensors",))])
    assert not no_lora.ok
    assert "No checkpoint models appear to be available" not in no_lora.render_text()
