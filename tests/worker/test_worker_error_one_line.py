"""A fault comes back to RunPod as one line (docs/INTERFACES.md), even when what ComfyUI relays spans several."""

from __future__ import annotations

from worker_harness import job

from images.worker.handler import run_job

# PyTorch's text for a sticky CUDA fault, as ComfyUI relays it in the execution_error's exception_message.
TORCH_CUDA_ERROR = ("CUDA error: an illegal memory access was encountered\n"
                    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
                    "below might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
                    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n")


def test_a_multi_line_error_from_comfyui_comes_back_as_one_line(comfy, models_dir, runtime_factory, monkeypatch):
    # docs/INTERFACES.md: a fault is {"error": "<one line ...>"}; the service shows it as the job's error.
    def failing(*args, **kwargs):
        raise RuntimeError(TORCH_CUDA_ERROR)

    monkeypatch.setattr(comfy.backend, "render", failing)
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert out.get("refresh_worker") is True, out
    assert "\n" not in out["error"] and "\r" not in out["error"], out["error"]
    assert ("CUDA error: an illegal memory access was encountered CUDA kernel errors might be asynchronously "
            "reported") in out["error"]
    assert "CUDA_LAUNCH_BLOCKING=1 Compile with" in out["error"]
