"""Review 30 (emu): the worker's first aid told an operator to run `goldgate doctor --stack <stack>`, a placeholder,
though every worker goldgate starts is told its stack (STACK, which the local stack host and the cloud endpoint both
set). The job's error now names it (`goldgate doctor --stack prod`); a worker not told one (or told something that is
no stack name, which must not reach a command to paste) keeps the placeholder. And with the ComfyUI emulator now
listing a broken link as ComfyUI does, a checkpoint link whose target is gone fails the job at its loader with
ComfyUI's words and the worker's cause, end to end (real handler, real emulator, a real link)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from worker_harness import bake_models, job

from images.worker.handler import run_job

SDXL = "sd_xl_base_1.0.safetensors"


def _error(comfy_factory: Any, runtime_factory: Any, models: Path, **env: str) -> str:
    comfy = comfy_factory(models)
    assert comfy.wait_listening(10)
    output = run_job(job(), runtime_factory(comfy.url, models, **env))
    assert "error" in output, output
    return output["error"]


def test_a_model_comfyui_does_not_list_names_the_doctor_command_of_the_workers_stack(
        tmp_path: Path, comfy_factory: Any, runtime_factory: Any) -> None:
    models = bake_models(tmp_path / "models", skip=(SDXL,))
    for stack, named in (("prod", "goldgate doctor --stack prod"),
                         ("", "goldgate doctor --stack <stack>"),  # not told its stack
                         ("prod; rm -rf ~", "goldgate doctor --stack <stack>")):  # no stack name: never pasted
        error = _error(comfy_factory, runtime_factory, models, STACK=stack)
        assert f"model file '{SDXL}' is not available to ComfyUI" in error, error
        assert f"run the worker preflight for a full report (`{named}` on the local target" in error, (stack, error)
        assert "rm -rf" not in error, error


@pytest.mark.parametrize(("stack", "named"), [("staging", "goldgate doctor --stack staging"),
                                              ("", "goldgate doctor --stack <stack>")])
def test_a_checkpoint_link_whose_target_is_gone_fails_the_job_at_its_loader_naming_the_stacks_doctor(
        tmp_path: Path, comfy_factory: Any, runtime_factory: Any, stack: str, named: str) -> None:
    models = bake_models(tmp_path / "models", skip=(SDXL,))
    (models / "checkpoints").mkdir(exist_ok=True)
    (models / "checkpoints" / SDXL).symlink_to(tmp_path / "volume" / SDXL)  # a network volume not attached
    error = _error(comfy_factory, runtime_factory, models, STACK=stack)
    # ComfyUI lists the link, takes the prompt, and its loader fails: not a refusal at validation
    assert "rejected the prompt" not in error, error
    assert (f"node 4 (CheckpointLoaderSimple): FileNotFoundError: Model in folder 'checkpoints' with filename "
            f"'{SDXL}' not found.") in error, error
    assert "a symbolic link in its place whose target is gone (a network volume not attached" in error, error
    assert f"the worker preflight (`{named}` on the local target" in error, error
