"""A warm worker runs job after job: ComfyUI never deletes what SaveImage wrote, so the worker removes each
job's images from ComfyUI's output folder once it has them, or the container disk fills and every job fails."""

from __future__ import annotations

import json
from pathlib import Path

from botocore.exceptions import ClientError
from worker_harness import job

from images.worker.handler import run_job


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def _runtime(comfy, models_dir, runtime_factory):
    return runtime_factory(comfy.url, models_dir, COMFY_OUTPUT_DIR=str(comfy.backend.output_dir))


def test_a_job_leaves_none_of_its_images_on_the_workers_disk(comfy, models_dir, runtime_factory):
    out = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), _runtime(comfy, models_dir, runtime_factory))

    assert "error" not in out, out
    assert len(out["images"]) == 2
    assert _files(comfy.backend.output_dir) == []


def test_a_job_whose_upload_fails_leaves_none_of_its_images_either(comfy, models_dir, runtime_factory):
    runtime = _runtime(comfy, models_dir, runtime_factory)

    def put_failing(**kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                          "PutObject")

    runtime.store._client.put_object = put_failing
    out = run_job(job(), runtime)

    assert out["error"].startswith("upload of results/job-1/0.png"), out
    assert _files(comfy.backend.output_dir) == []


def test_every_run_of_the_same_graph_saves_its_images_apart(comfy, models_dir, runtime_factory):
    # ComfyUI answers a prompt identical to one it ran from its cache, naming the files that run saved, which
    # the worker has removed: each run gives SaveImage a prefix of its own, so SaveImage runs again.
    runtime = _runtime(comfy, models_dir, runtime_factory)
    first, second = run_job(job(), runtime), run_job(job(), runtime)

    assert "error" not in first and "error" not in second, (first, second)
    assert first["images"] == second["images"]
    prefixes = [entry["prompt"][2]["9"]["inputs"]["filename_prefix"] for entry in comfy.backend.history().values()]
    assert len(set(prefixes)) == 2 and all(prefix.endswith("/goldgate") for prefix in prefixes), prefixes


def test_the_output_names_keys_only_small_and_free_of_credentials_and_urls(comfy, models_dir, runtime_factory,
                                                                          storage):
    # RunPod keeps the output and echoes it in the webhook: it must stay far below RunPod's 10 MB and carry no
    # way into the bucket (no key, no endpoint, no presigned URL).
    out = run_job(job({"prompt": "a lighthouse", "batch_size": 4}), _runtime(comfy, models_dir, runtime_factory))

    text = json.dumps(out)
    assert len(out["images"]) == 4 and len(text) < 4096, len(text)
    for secret in (storage.access_key_id, storage.secret_access_key, storage.endpoint_url, "X-Amz-", "://"):
        assert secret not in text
