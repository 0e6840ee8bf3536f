"""RunPod delivers a job at least once: the same job may run again (a /retry, a worker that lost its
heartbeat) on a GPU whose render is not bit-identical. The run that comes second must succeed with the
same result keys, and its output must describe the objects that are in the store."""

from __future__ import annotations

import copy
import hashlib
import json

from worker_harness import job, s3_client

from images.worker.handler import run_job


def _on_another_gpu(comfy, monkeypatch) -> None:
    """This ComfyUI renders the same graph into other pixels, as a second GPU (or GPU type) does."""
    render = comfy.backend.render

    def other_pixels(prompt, save_node):
        shifted = copy.deepcopy(prompt)
        shifted["3"]["inputs"]["seed"] += 1
        return render(shifted, save_node)

    monkeypatch.setattr(comfy.backend, "render", other_pixels)


def _stored(storage) -> dict[str, tuple[int, str]]:
    """The stored images (the job's outcome.json, stored next to them, describes them: test_outcome_stored.py)."""
    s3 = s3_client(storage.endpoint_url)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=storage.bucket).get("Contents", [])
            if not item["Key"].endswith("/outcome.json")]
    bodies = {key: s3.get_object(Bucket=storage.bucket, Key=key)["Body"].read() for key in keys}
    return {key: (len(body), hashlib.sha256(body).hexdigest()) for key, body in bodies.items()}


def _described(images: list[dict]) -> dict[str, tuple[int, str]]:
    return {image["key"]: (image["bytes"], image["sha256"]) for image in images}


def test_a_job_run_again_on_another_gpu_returns_the_images_the_first_run_stored(
        models_dir, comfy_factory, runtime_factory, storage, logs, monkeypatch):
    first_gpu, second_gpu = comfy_factory(models_dir), comfy_factory(models_dir)
    _on_another_gpu(second_gpu, monkeypatch)
    the_job = job({"prompt": "a lighthouse", "batch_size": 2, "seed": 7})
    first = run_job(the_job, runtime_factory(first_gpu.url, models_dir))
    assert "error" not in first, first

    second = run_job(the_job, runtime_factory(second_gpu.url, models_dir))

    assert "error" not in second, second
    assert second["images"] == first["images"]
    assert _stored(storage) == _described(first["images"])
    assert logs.events().count("image_kept_from_earlier_run") == 2


def test_a_run_after_one_killed_midway_keeps_its_image_and_stores_the_rest(
        models_dir, comfy_factory, runtime_factory, storage, monkeypatch):
    # The first worker was killed (SIGKILL after RunPod's grace) after its first upload: no cleanup ran.
    first_gpu, second_gpu = comfy_factory(models_dir), comfy_factory(models_dir)
    _on_another_gpu(second_gpu, monkeypatch)
    the_job = job({"prompt": "a lighthouse", "batch_size": 2, "seed": 7})
    first = run_job(the_job, runtime_factory(first_gpu.url, models_dir))
    for key in ("results/job-1/1.png", "results/job-1/outcome.json"):  # the outcome is stored after every image
        s3_client(storage.endpoint_url).delete_object(Bucket=storage.bucket, Key=key)

    second = run_job(the_job, runtime_factory(second_gpu.url, models_dir))

    assert "error" not in second, second
    assert [i["key"] for i in second["images"]] == ["results/job-1/0.png", "results/job-1/1.png"]
    assert second["images"][0] == first["images"][0]
    assert second["images"][1]["sha256"] != first["images"][1]["sha256"]
    assert _stored(storage) == _described(second["images"])
    outcome = s3_client(storage.endpoint_url).get_object(Bucket=storage.bucket, Key="results/job-1/outcome.json")
    assert json.loads(outcome["Body"].read())["output"] == second


def test_another_jobs_images_under_the_same_prefix_are_still_refused(
        models_dir, comfy_factory, runtime_factory, storage, monkeypatch):
    first_gpu, second_gpu = comfy_factory(models_dir), comfy_factory(models_dir)
    _on_another_gpu(second_gpu, monkeypatch)
    first = run_job(job(job_id="job-1"), runtime_factory(first_gpu.url, models_dir))
    intruder = job(job_id="job-2", result_prefix="results/job-1/")

    out = run_job(intruder, runtime_factory(second_gpu.url, models_dir))

    assert "already exists" in out["error"] and "refusing to overwrite" in out["error"], out
    assert _stored(storage) == _described(first["images"])


def test_the_same_job_id_with_other_inputs_does_not_pass_off_the_stored_images_as_its_own(
        comfy, models_dir, runtime_factory, storage):
    runtime = runtime_factory(comfy.url, models_dir)
    first = run_job(job({"prompt": "a lighthouse"}), runtime)

    out = run_job(job({"prompt": "a windmill"}), runtime)

    assert "already exists" in out["error"] and "refusing to overwrite" in out["error"], out
    assert _stored(storage) == _described(first["images"])
