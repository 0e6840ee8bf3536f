"""The ComfyUI emulator speaks ComfyUI's HTTP API and validation shapes, over real files."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from worker_harness import WORKER_DIR, post_json, validate_log_lines

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.comfy_client import ComfyClient, ComfyExecutionError, PromptRejected
from images.worker.workflows import build_graph, load_workflows, resolve_inputs

WORKFLOWS = load_workflows(WORKER_DIR / "workflows")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _graph(inputs: dict[str, Any], workflow: str = "sdxl-txt2img") -> dict[str, Any]:
    wf = WORKFLOWS[workflow]
    return build_graph(wf, resolve_inputs(wf, inputs))


def _render(comfy: ComfyUIEmulator, graph: dict[str, Any]) -> list[bytes]:
    client = ComfyClient(comfy.url, 0.02)
    images = client.wait_for_outputs(client.queue_prompt(graph, "t"), 10)
    return [client.fetch_image(i) for i in images]


def test_object_info_lists_the_model_files_really_present(comfy, models_dir: Path):
    (models_dir / "checkpoints" / "sub").mkdir()
    (models_dir / "checkpoints" / "sub" / "extra.ckpt").write_bytes(b"x")
    (models_dir / "checkpoints" / "notes.txt").write_text("not a model")
    status, body = _get(comfy.url + "/object_info/CheckpointLoaderSimple")
    info = json.loads(body)["CheckpointLoaderSimple"]
    assert status == 200
    assert info["input"]["required"]["ckpt_name"] == [["sd_xl_base_1.0.safetensors", "sub/extra.ckpt"]]
    assert info["output"] == ["MODEL", "CLIP", "VAE"]
    stats = json.loads(_get(comfy.url + "/system_stats")[1])
    assert {"system", "devices"} <= set(stats) and stats["devices"][0]["type"] == "cuda"


def test_a_missing_model_is_rejected_with_comfyuis_value_not_in_list_shape(tmp_path: Path, comfy_factory):
    comfy = comfy_factory(tmp_path / "empty-models")
    assert comfy.wait_listening(10)
    status, body = post_json(comfy.url + "/prompt", {"prompt": _graph({"prompt": "x"})})
    assert status == 400
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["message"] == "Prompt outputs failed validation"
    node = body["node_errors"]["4"]
    assert node["class_type"] == "CheckpointLoaderSimple" and node["dependent_outputs"] == ["9"]
    [error] = node["errors"]
    assert error == {"type": "value_not_in_list", "message": "Value not in list",
                     "details": "ckpt_name: 'sd_xl_base_1.0.safetensors' not in []",
                     "extra_info": {"input_name": "ckpt_name", "input_config": [[]],
                                    "received_value": "sd_xl_base_1.0.safetensors"}}


@pytest.mark.parametrize(("mutate", "kind"), [
    (lambda g: g["5"]["inputs"].update(width=8), "value_smaller_than_min"),
    (lambda g: g["3"]["inputs"].update(steps="many"), "invalid_input_type"),
    (lambda g: g["3"]["inputs"].pop("seed"), "required_input_missing"),
    (lambda g: g["3"]["inputs"].update(model=["4", 1]), "return_type_mismatch"),
    (lambda g: g["3"]["inputs"].update(sampler_name="magic"), "value_not_in_list"),
])
def test_input_validation_errors_follow_comfyui(comfy, mutate, kind):
    graph = _graph({"prompt": "x"})
    mutate(graph)
    status, body = post_json(comfy.url + "/prompt", {"prompt": graph})
    assert status == 400
    assert [e["type"] for e in body["node_errors"]["3" if kind != "value_smaller_than_min" else "5"]["errors"]] == [kind]


def test_prompt_level_errors_follow_comfyui(comfy):
    assert post_json(comfy.url + "/prompt", {"nope": 1}) == (400, {"error": {
        "type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}},
        "node_errors": {}})
    status, body = post_json(comfy.url + "/prompt", {"prompt": {"1": {"class_type": "Mystery", "inputs": {}}}})
    assert status == 400 and body["error"]["type"] == "missing_node_type"
    graph = _graph({"prompt": "x"})
    del graph["9"]
    assert post_json(comfy.url + "/prompt", {"prompt": graph})[1]["error"]["type"] == "prompt_no_outputs"


def test_history_and_queue_have_comfyuis_shapes(comfy):
    status, accepted = post_json(comfy.url + "/prompt", {"prompt": _graph({"prompt": "x"}), "client_id": "c"})
    assert status == 200 and set(accepted) == {"prompt_id", "number", "node_errors"}
    ComfyClient(comfy.url, 0.02).wait_for_outputs(accepted["prompt_id"], 10)
    entry = json.loads(_get(f"{comfy.url}/history/{accepted['prompt_id']}")[1])[accepted["prompt_id"]]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert entry["status"]["messages"][0][0] == "execution_start"
    assert entry["prompt"][1] == accepted["prompt_id"]
    assert entry["outputs"]["9"]["images"][0]["type"] == "output"
    assert json.loads(_get(comfy.url + "/queue")[1]) == {"queue_running": [], "queue_pending": []}
    assert json.loads(_get(comfy.url + "/history/unknown")[1]) == {}


def test_images_are_deterministic_sized_by_the_latent_and_follow_every_parameter(comfy):
    base = {"prompt": "a lighthouse", "seed": 1, "width": 640, "height": 520}
    first, again = _render(comfy, _graph(base)), _render(comfy, _graph(base))
    assert first == again
    assert Image.open(io.BytesIO(first[0])).size == (640, 520)
    for change in ({"seed": 2}, {"prompt": "a lighthouse!"}, {"steps": 26}, {"negative_prompt": "x"}):
        assert _render(comfy, _graph({**base, **change})) != first, change


def test_view_serves_outputs_and_refuses_paths_outside_them(comfy):
    [png] = _render(comfy, _graph({"prompt": "x"}))
    assert png.startswith(b"\x89PNG")
    # ComfyUI's /view: a '..' or absolute filename and an unknown type are 400, a subfolder outside the
    # directory 403, a file that is not there 404.
    for query, status in (("filename=../../etc/passwd", 400), ("filename=/etc/passwd", 400), ("filename=", 400),
                          ("filename=goldgate_00001_.png&type=bogus", 400),
                          ("filename=x.png&subfolder=../..", 403), ("filename=.hidden", 404),
                          ("filename=goldgate_00001_.png&type=temp", 404), ("filename=x.png&subfolder=%00", 404),
                          ("", 404)):
        assert _get(f"{comfy.url}/view?{query}")[0] == status, query


def test_a_node_failing_at_run_time_is_an_execution_error_and_the_queue_goes_on(comfy):
    graph = _graph({"prompt": "x"})
    graph["9"]["inputs"]["filename_prefix"] = "x" * 300  # longer than a file name may be
    client = ComfyClient(comfy.url, 0.02)
    failed = client.queue_prompt(graph, "t")
    with pytest.raises(ComfyExecutionError, match=r"node 9 \(SaveImage\): OSError: .*File name too long"):
        client.wait_for_outputs(failed, 10)
    entry = json.loads(_get(f"{comfy.url}/history/{failed}")[1])[failed]
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    kind, info = entry["status"]["messages"][-1]
    assert kind == "execution_error"
    assert {"prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type", "traceback",
            "current_inputs", "current_outputs", "timestamp"} <= set(info)
    assert _render(comfy, _graph({"prompt": "x"}))[0].startswith(b"\x89PNG")


def test_during_the_startup_delay_connections_are_refused(models_dir: Path, comfy_factory):
    comfy = comfy_factory(models_dir, startup_delay_s=120)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", comfy.port), timeout=5)
    assert ComfyClient(comfy.url).is_ready()[0] is False


def test_the_emulator_logs_schema_v1_lines(models_dir: Path, comfy_factory):
    stream = io.StringIO()
    comfy = comfy_factory(models_dir, log_stream=stream)
    assert comfy.wait_listening(10)
    post_json(comfy.url + "/prompt", {"prompt": _graph({"prompt": "x"})})

    lines = validate_log_lines(stream.getvalue())
    assert {line["component"] for line in lines} == {"comfyui-emulator"}
    assert "comfyui_listening" in [line["event"] for line in lines]


def _running(comfy: ComfyUIEmulator) -> list[Any]:
    return json.loads(_get(comfy.url + "/queue")[1])["queue_running"]


def _wait_running(comfy: ComfyUIEmulator) -> str:
    for _ in range(200):
        if running := _running(comfy):
            return running[0][1]
        time.sleep(0.05)
    pytest.fail("the prompt never started running")


def test_an_interrupt_naming_another_prompt_leaves_the_running_one_alone(models_dir: Path, comfy_factory):
    # ComfyUI's POST /interrupt with {"prompt_id"} interrupts only when that prompt is the one running.
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    status, accepted = post_json(comfy.url + "/prompt", {"prompt": _graph({"prompt": "x"})})
    assert status == 200 and _wait_running(comfy) == accepted["prompt_id"]
    assert post_json(comfy.url + "/interrupt", {"prompt_id": "some-other-prompt"}) == (200, None)
    time.sleep(0.5)
    assert [item[1] for item in _running(comfy)] == [accepted["prompt_id"]]
    assert post_json(comfy.url + "/interrupt", {"prompt_id": accepted["prompt_id"]}) == (200, None)
    with pytest.raises(ComfyExecutionError):
        ComfyClient(comfy.url, 0.02).wait_for_outputs(accepted["prompt_id"], 10)


def test_an_interrupted_prompt_is_reported_as_interrupted_not_as_a_failure_without_detail(models_dir: Path,
                                                                                          comfy_factory):
    comfy = comfy_factory(models_dir, render_delay_s=120)
    assert comfy.wait_listening(10)
    client = ComfyClient(comfy.url, 0.02)
    prompt_id = client.queue_prompt(_graph({"prompt": "x"}), "t")
    _wait_running(comfy)
    post_json(comfy.url + "/interrupt", {})
    with pytest.raises(ComfyExecutionError) as failed:
        client.wait_for_outputs(prompt_id, 10)
    assert f"ComfyUI interrupted prompt {prompt_id} at node 9 (SaveImage)" in str(failed.value)
    assert "no detail" not in str(failed.value)


def _two_outputs_one_invalid() -> dict[str, Any]:
    graph = _graph({"prompt": "x"})
    graph["13"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 8, "height": 512, "batch_size": 1}}
    graph["12"] = {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["4", 2]}}
    graph["11"] = {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "second"}}
    return graph


def test_a_prompt_with_one_invalid_output_is_accepted_with_its_node_errors(comfy):
    # ComfyUI runs the outputs that validate and answers 200 with node_errors for the ones it drops.
    status, accepted = post_json(comfy.url + "/prompt", {"prompt": _two_outputs_one_invalid()})
    assert status == 200
    node = accepted["node_errors"]["13"]
    assert node["class_type"] == "EmptyLatentImage" and node["dependent_outputs"] == ["11"]
    assert [e["type"] for e in node["errors"]] == ["value_smaller_than_min"]


def test_the_client_refuses_a_prompt_comfyui_would_run_only_in_part(models_dir: Path, comfy_factory):
    comfy = comfy_factory(models_dir, render_delay_s=120)  # a real render takes long enough to withdraw it
    assert comfy.wait_listening(10)
    client = ComfyClient(comfy.url, 0.02)
    with pytest.raises(PromptRejected) as rejected:
        client.queue_prompt(_two_outputs_one_invalid(), "t")
    assert set(rejected.value.node_errors) == {"13"}
    time.sleep(0.3)
    assert json.loads(_get(comfy.url + "/queue")[1]) == {"queue_running": [], "queue_pending": []}
    assert all(not entry["outputs"] for entry in json.loads(_get(comfy.url + "/history")[1]).values())
