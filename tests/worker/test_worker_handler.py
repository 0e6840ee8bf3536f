"""The real handler against the ComfyUI emulator and moto's S3 server, both on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from worker_harness import SECRET_KEY, TRACE_ID, bake_models, job, s3_client, worker_env

from images.worker import handler as handler_module
from images.worker.config import ConfigError, load_config
from images.worker.handler import build_runtime, run_job


def test_job_uploads_every_image_with_content_type_size_and_digest(comfy, models_dir, runtime_factory, storage):
    runtime = runtime_factory(comfy.url, models_dir)
    out = run_job(job({"prompt": "a lighthouse", "width": 640, "height": 512, "batch_size": 2, "seed": 7}), runtime)
    assert "error" not in out, out
    assert [i["key"] for i in out["images"]] == ["results/job-1/0.png", "results/job-1/1.png"]
    s3 = s3_client(storage.endpoint_url)
    for image in out["images"]:
        head = s3.head_object(Bucket=storage.bucket, Key=image["key"])
        body = s3.get_object(Bucket=storage.bucket, Key=image["key"])["Body"].read()
        assert head["ContentType"] == "image/png" == image["content_type"]
        assert head["ContentLength"] == image["bytes"] == len(body)
        assert hashlib.sha256(body).hexdigest() == image["sha256"]
        assert (image["width"], image["height"]) == (640, 512)
    assert out["images"][0]["sha256"] != out["images"][1]["sha256"]
    assert out["workflow_version"] == "sdxl-txt2img@1.0.0"
    assert out["worker_image_tag"] == "local/worker@sha256:" + "ab" * 32
    assert out["gpu_type"] == "NVIDIA GeForce RTX 4090"
    assert set(out["timings"]) == {"comfy_wait_ms", "queue_ms", "inference_ms", "upload_ms", "total_ms"}


def test_unet_clip_vae_lora_workflow_renders(comfy, models_dir, runtime_factory):
    runtime = runtime_factory(comfy.url, models_dir)
    out = run_job(job({"prompt": "a fox", "width": 768, "height": 512, "lora_strength": 0.5},
                      workflow="flux-schnell-lora"), runtime)
    assert "error" not in out, out
    assert (out["images"][0]["width"], out["images"][0]["height"]) == (768, 512)


def test_rerunning_a_job_keeps_the_stored_image_and_succeeds(comfy, models_dir, runtime_factory, storage):
    runtime = runtime_factory(comfy.url, models_dir)
    first = run_job(job(), runtime)
    second = run_job(job(), runtime)
    assert "error" not in second, second
    assert first["images"] == second["images"]


def test_a_different_object_under_the_key_is_never_overwritten(comfy, models_dir, runtime_factory, storage):
    s3 = s3_client(storage.endpoint_url)
    s3.put_object(Bucket=storage.bucket, Key="results/job-1/0.png", Body=b"someone else's bytes")
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert "already exists" in out["error"] and "refusing to overwrite" in out["error"]
    assert s3.get_object(Bucket=storage.bucket, Key="results/job-1/0.png")["Body"].read() == b"someone else's bytes"


def test_missing_checkpoint_gives_the_first_aid_error(tmp_path, comfy_factory, runtime_factory):
    models = bake_models(tmp_path / "models", skip=("sd_xl_base_1.0.safetensors",))
    comfy = comfy_factory(models)
    out = run_job(job(), runtime_factory(comfy.url, models))
    error = out["error"]
    assert "No checkpoint models appear to be available" in error
    assert "'sd_xl_base_1.0.safetensors'" in error
    assert f"searched {models / 'checkpoints'}" in error
    for cause in ("not baked into the image", "wrong directory", "UNet/diffusion model", "network volume"):
        assert cause in error
    assert "\n" not in error


def test_checkpoint_baked_into_the_unet_directory_is_pointed_at(tmp_path, comfy_factory, runtime_factory):
    models = bake_models(tmp_path / "models", skip=("sd_xl_base_1.0.safetensors",))
    (models / "unet").mkdir()
    (models / "unet" / "sd_xl_base_1.0.safetensors").write_bytes(b"x")
    comfy = comfy_factory(models)
    out = run_job(job(), runtime_factory(comfy.url, models))
    assert f"found at {models / 'unet' / 'sd_xl_base_1.0.safetensors'}" in out["error"]


def test_many_checkpoints_present_is_not_called_no_checkpoints(tmp_path, comfy_factory, runtime_factory):
    # ComfyUI does not echo a list of more than 20 files back (input_config is null), so the worker
    # cannot see the list; it must not claim that no checkpoint is available.
    models = bake_models(tmp_path / "models", skip=("sd_xl_base_1.0.safetensors",))
    (models / "checkpoints").mkdir(exist_ok=True)
    for n in range(21):
        (models / "checkpoints" / f"other-{n:02}.safetensors").write_bytes(b"x")
    comfy = comfy_factory(models)
    error = run_job(job(), runtime_factory(comfy.url, models))["error"]
    assert "'sd_xl_base_1.0.safetensors'" in error and f"searched {models / 'checkpoints'}" in error
    assert "No checkpoint models appear to be available" not in error


def test_a_node_failing_in_comfyui_fails_the_job_and_the_next_job_runs(comfy, models_dir, runtime_factory,
                                                                       monkeypatch):
    runtime = runtime_factory(comfy.url, models_dir)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with monkeypatch.context() as patch:
        patch.setattr(comfy.backend, "render", out_of_memory)
        failed = run_job(job(), runtime)
    assert failed["error"].startswith("ComfyUI failed while running prompt"), failed
    assert "node 9 (SaveImage): RuntimeError: CUDA out of memory" in failed["error"]
    out = run_job(job(job_id="job-2"), runtime)
    assert "error" not in out, out


def test_missing_unet_model_names_the_diffusion_model_directories(tmp_path, comfy_factory, runtime_factory):
    models = bake_models(tmp_path / "models", skip=("flux1-schnell.safetensors",))
    comfy = comfy_factory(models)
    out = run_job(job(workflow="flux-schnell-lora"), runtime_factory(comfy.url, models))
    assert "'flux1-schnell.safetensors'" in out["error"]
    assert str(models / "diffusion_models") in out["error"] and str(models / "unet") in out["error"]
    assert "No checkpoint models" not in out["error"]


def test_a_cold_start_within_the_bound_succeeds(models_dir, comfy_factory, runtime_factory):
    comfy = comfy_factory(models_dir, startup_delay_s=1.0)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="30"))
    assert "error" not in out, out


def test_a_cold_start_beyond_the_bound_fails_clearly(models_dir, comfy_factory, runtime_factory):
    comfy = comfy_factory(models_dir, startup_delay_s=120)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="0.5"))
    assert out["error"].startswith(f"ComfyUI at {comfy.url} was not ready after 0.5 s")
    assert "COMFY_READY_TIMEOUT_S" in out["error"]


def test_the_job_bound_counts_the_cold_start_too(models_dir, comfy_factory, runtime_factory):
    # RunPod's executionTimeout runs from the job's start: a worker whose own bound started after the
    # cold start would be cut off by RunPod first, without its clear error or the prompt's cancel.
    comfy = comfy_factory(models_dir, startup_delay_s=120)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_READY_TIMEOUT_S="30", COMFY_JOB_TIMEOUT_S="0.5"))
    assert out["error"].startswith(f"ComfyUI at {comfy.url} was not ready after 0.5 s"), out
    assert "COMFY_JOB_TIMEOUT_S the whole job" in out["error"]


def _comfy_queue(comfy) -> dict:
    with urllib.request.urlopen(comfy.url + "/queue", timeout=10) as resp:
        return json.loads(resp.read())


def test_a_prompt_that_outlasts_the_job_bound_fails_and_is_cancelled(models_dir, comfy_factory, runtime_factory):
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    out = run_job(job(), runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="0.5"))
    assert "did not finish prompt" in out["error"] and "COMFY_JOB_TIMEOUT_S" in out["error"]
    # The job returns only once ComfyUI has dropped the render: one left running would hold the GPU and the
    # worker's next job would queue behind it.
    assert _comfy_queue(comfy) == {"queue_running": [], "queue_pending": []}


INVALID_INPUTS = [
    ("not a dict", "job input must be a JSON object"),
    ({**job()["input"], "trace_id": "XYZ"}, "'trace_id' is malformed"),
    ({**job()["input"], "trace_id": TRACE_ID + "\n"}, "'trace_id' is malformed"),
    ({**job()["input"], "job_id": "job-1\n"}, "'job_id' is malformed"),
    ({**job()["input"], "result_prefix": "results/job-1/\n"}, "'result_prefix' is malformed"),
    ({**job()["input"], "job_id": "../etc"}, "'job_id' is malformed"),
    ({k: v for k, v in job()["input"].items() if k != "job_id"}, "lacks 'job_id'"),
    ({**job()["input"], "result_prefix": "/abs/"}, "'result_prefix' is malformed"),
    ({**job()["input"], "result_prefix": "results/../x/"}, "'.' or '..' segment"),
    ({**job()["input"], "workflow_id": "nope"}, "unknown workflow 'nope'"),
    ({**job()["input"], "workflow_version": "sdxl-txt2img@9.9.9"}, "workflow version mismatch"),
    ({**job()["input"], "inputs": []}, "'inputs' must be an object"),
    ({**job()["input"], "inputs": {}}, "input 'prompt' is required"),
    ({**job()["input"], "inputs": {"prompt": "x", "colour": 1}}, "unknown input 'colour'"),
    ({**job()["input"], "inputs": {"prompt": 5}}, "input 'prompt' must be a string"),
    ({**job()["input"], "inputs": {"prompt": "x" * 2001}}, "at most 2000 characters"),
    ({**job()["input"], "inputs": {"prompt": "x", "width": 4096}}, "input 'width' must be <= 2048"),
    ({**job()["input"], "inputs": {"prompt": "x", "width": True}}, "input 'width' must be an integer"),
    ({**job()["input"], "inputs": {"prompt": "x", "cfg": "high"}}, "input 'cfg' must be a number"),
    ({**job()["input"], "inputs": {"prompt": "x", "sampler": "magic"}}, "input 'sampler' must be one of"),
    ({**job()["input"], "api_key": "x"}, "unknown field 'api_key'"),
    ({**job()["input"], "inputs": {"prompt": "x" * 70_000}}, "the limit is 65536"),
]


@pytest.mark.parametrize(("payload", "expected"), INVALID_INPUTS, ids=[e for _, e in INVALID_INPUTS])
def test_each_invalid_input_gets_its_own_clear_error(payload, expected, comfy, models_dir, runtime_factory):
    out = run_job({"id": "rp-1", "input": payload}, runtime_factory(comfy.url, models_dir))
    assert set(out) == {"error"}
    assert expected in out["error"], out["error"]


def test_every_log_line_is_schema_v1_with_the_trace_and_no_secret(comfy, models_dir, runtime_factory, logs):
    runtime = runtime_factory(comfy.url, models_dir)
    run_job(job(), runtime)
    run_job(job({"prompt": ""}, job_id="job-2"), runtime)
    lines = logs.lines()
    assert [line["component"] for line in lines] == ["worker"] * len(lines)
    assert {"job_started", "comfy_ready", "prompt_queued", "prompt_completed", "image_uploaded",
            "job_completed", "job_rejected"} <= {line["event"] for line in lines}
    for line in lines:
        assert line["trace_id"] == TRACE_ID
        assert line["job_id"] in ("job-1", "job-2")
        assert line["worker_image_tag"] and line["stack"] == "local"
    assert SECRET_KEY not in logs.getvalue()


def test_a_secret_that_reaches_a_message_is_redacted(comfy, models_dir, runtime_factory, logs):
    runtime = runtime_factory(comfy.url, models_dir)
    runtime.log.error("probe", message=f"leaked {SECRET_KEY}")
    assert SECRET_KEY not in logs.getvalue() and "[redacted]" in logs.getvalue()


def test_unreachable_storage_fails_the_job_with_the_key(comfy, models_dir, logs):
    # Credentials of a realistic length: returned errors are masked of them, and a one-letter "secret"
    # would be masked out of every word of the message.
    env = worker_env(comfy.url, None, models_dir, R2_ENDPOINT_URL="http://127.0.0.1:9", R2_BUCKET="b",
                     R2_ACCESS_KEY_ID="AKIDUNREACHABLE00001", R2_SECRET_ACCESS_KEY="unreachable-storage-secret")
    runtime = build_runtime(load_config(env), stream=logs, poll_interval_s=0.05)
    out = run_job(job(), runtime)
    assert out["error"].startswith("upload of results/job-1/0.png to bucket b failed")


def test_a_worker_without_storage_refuses_to_start(comfy, models_dir):
    with pytest.raises(ConfigError, match="R2_ENDPOINT_URL, R2_BUCKET"):
        build_runtime(load_config(worker_env(comfy.url, None, models_dir)))


def test_half_configured_storage_is_named(models_dir):
    with pytest.raises(ConfigError, match="R2_SECRET_ACCESS_KEY not set"):
        load_config({"R2_ENDPOINT_URL": "http://x", "R2_BUCKET": "b", "R2_ACCESS_KEY_ID": "a"})


@pytest.mark.parametrize(("name", "value"), [("COMFY_READY_TIMEOUT_S", "soon"), ("COMFY_JOB_TIMEOUT_S", "-1"),
                                             ("COMFY_URL", "ftp://x")])
def test_malformed_worker_environment_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_output_is_json_serialisable_for_runpod(comfy, models_dir, runtime_factory):
    out = run_job(job(), runtime_factory(comfy.url, models_dir))
    assert json.loads(json.dumps(out)) == out
    assert Path(out["images"][0]["key"]).suffix == ".png"


def test_a_number_too_large_for_a_float_is_an_input_error_not_a_traceback(comfy, models_dir, runtime_factory):
    # JSON allows integers of any size; a float parameter must refuse them, not crash the handler.
    out = run_job(job({"prompt": "x", "cfg": 10**400}), runtime_factory(comfy.url, models_dir))
    assert set(out) == {"error"}
    assert "input 'cfg' must be a finite number" in out["error"]


def test_an_integer_bound_is_stated_exactly(comfy, models_dir, runtime_factory):
    out = run_job(job({"prompt": "x", "seed": 4294967296}), runtime_factory(comfy.url, models_dir))
    assert "input 'seed' must be <= 4294967295, got 4294967296" in out["error"], out


HOSTILE_ECHOES = [
    {"inputs": {"prompt": "x", "sampler": "y" * 60_000}},
    {"inputs": {"prompt": "x", "q" * 60_000: 1}},
    {"inputs": {"prompt": "x", "seed": 10**4000}},
    {"workflow_version": "z" * 60_000},
    {"w" * 60_000: 1},
]


@pytest.mark.parametrize("override", HOSTILE_ECHOES, ids=["choice", "input-name", "integer", "version", "field"])
def test_an_oversized_hostile_value_is_not_echoed_back_in_full(override, comfy, models_dir, runtime_factory, logs):
    # RunPod stores the output and the service copies the error into D1: a 60 KB echo is noise at best.
    payload = {**job()["input"], **override}
    out = run_job({"id": "rp-1", "input": payload}, runtime_factory(comfy.url, models_dir))
    assert set(out) == {"error"}
    assert len(out["error"]) < 500, out["error"][:300]


@pytest.mark.parametrize("interrupt_lag_s", [0.0, 1.0], ids=["stops-at-once", "stops-at-its-next-step"])
def test_a_runpod_cancel_stops_the_prompt_in_comfyui_before_the_next_job(models_dir, comfy_factory, runtime_factory,
                                                                         storage, logs, monkeypatch, interrupt_lag_s):
    # The SDK stops a cancelled or timed-out job by cancelling the handler's task. The render must stop
    # with it: a prompt left running keeps the GPU busy, and the worker's next job queues behind it.
    # ComfyUI stops an interrupted prompt at its next step, so the handler returns only once it has.
    comfy = comfy_factory(models_dir, render_delay_s=120, interrupt_lag_s=interrupt_lag_s)
    assert comfy.wait_listening(10)
    # the job's bound is far beyond the cancel, however slow the machine: the cancel stops the render, not the bound
    monkeypatch.setattr(handler_module, "_runtime", runtime_factory(comfy.url, models_dir, COMFY_JOB_TIMEOUT_S="60"))

    async def cancel_while_rendering() -> dict:
        task = asyncio.create_task(handler_module.handler(job()))
        while not _comfy_queue(comfy)["queue_running"]:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return _comfy_queue(comfy)

    after = asyncio.run(asyncio.wait_for(cancel_while_rendering(), 30))
    assert after == {"queue_running": [], "queue_pending": []}
    assert "job_cancelled" in logs.events()
    assert "Contents" not in s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)


def test_a_missing_lora_is_not_blamed_on_the_checkpoint_loader(tmp_path, comfy_factory, runtime_factory):
    models = bake_models(tmp_path / "models", skip=("flux_realism_lora.safetensors",))
    comfy = comfy_factory(models)
    error = run_job(job(workflow="flux-schnell-lora"), runtime_factory(comfy.url, models))["error"]
    assert "'flux_realism_lora.safetensors'" in error and f"searched {models / 'loras'}" in error
    assert "checkpoint loader" not in error and "No checkpoint models" not in error
    assert "not baked into the image" in error and "network volume" in error


def test_a_secret_straddling_the_log_line_cut_leaves_no_part_of_it(comfy, models_dir, runtime_factory, logs):
    # A log line's message and error are cut at 4000 characters; cutting before masking would leave the
    # first characters of a secret that straddles the cut in the line.
    runtime = runtime_factory(comfy.url, models_dir)
    text = "x" * 3990 + SECRET_KEY + " tail"
    runtime.log.error("probe", message=text, error={"type": "RuntimeError", "message": text})
    (line,) = logs.lines()
    assert SECRET_KEY[:10] not in line["message"] and SECRET_KEY[:10] not in line["error"]["message"]
    assert line["message"].startswith("x" * 3990 + "[redacted")


def _stored_keys(storage) -> list[str]:
    listing = s3_client(storage.endpoint_url).list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_a_job_whose_second_image_is_unusable_leaves_nothing_in_the_store(comfy, models_dir, runtime_factory,
                                                                           storage, monkeypatch):
    # A failed job's images must not stay behind: its retry (RunPod /retry, same result prefix) renders
    # again, and a GPU render that is not bit-identical then fails for ever on "already exists with
    # different content".
    render = comfy.backend.render
    monkeypatch.setattr(comfy.backend, "render", lambda *a, **k: [render(*a, **k)[0], b"not a png at all"])
    runtime = runtime_factory(comfy.url, models_dir)
    out = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    assert "not a PNG image" in out["error"], out
    assert _stored_keys(storage) == []


@contextlib.contextmanager
def _second_upload_failing(runtime) -> Iterator[None]:
    """In the block, the runtime's S3 client fails the upload of a job's second image (.../1.png) as S3 does with an
    InternalError; every other upload goes through."""
    client = runtime.store._client
    put = client.put_object

    def put_failing_on_the_second(**kwargs):
        if kwargs["Key"].endswith("/1.png"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                              "PutObject")
        return put(**kwargs)

    client.put_object = put_failing_on_the_second
    try:
        yield
    finally:
        client.put_object = put


def test_an_upload_failing_midway_removes_what_the_job_stored(comfy, models_dir, runtime_factory, storage):
    runtime = runtime_factory(comfy.url, models_dir)
    with _second_upload_failing(runtime):
        out = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    assert out["error"].startswith("upload of results/job-1/1.png"), out
    assert _stored_keys(storage) == []
    retried = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    assert "error" not in retried, retried
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/1.png", "results/job-1/outcome.json"]


def test_an_image_stored_by_an_earlier_attempt_is_kept_when_this_one_fails(comfy, models_dir, runtime_factory,
                                                                           storage):
    # Only what this attempt created is removed: an identical object stored earlier stays.
    runtime = runtime_factory(comfy.url, models_dir)
    assert "error" not in run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    with _second_upload_failing(runtime):
        out = run_job(job({"prompt": "a lighthouse", "batch_size": 2}), runtime)
    assert out["error"].startswith("upload of results/job-1/1.png"), out
    assert _stored_keys(storage) == ["results/job-1/0.png", "results/job-1/1.png", "results/job-1/outcome.json"]
