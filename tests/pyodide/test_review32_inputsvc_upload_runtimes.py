"""Input images under real Pyodide: the Worker's real upload (`run_worker.mjs --serve`: sql.js D1, the JS R2
stand-in, whose `put` refuses a value that is not a string, ArrayBuffer or view, as R2 does) and the local server
(`python -m service.local_server`) take the same image upload, answer it alike, and a job created with its key
sends RunPod the key alone; a key never uploaded, bytes of another type and a result read of the upload are
refused alike. The entry's R2 write (bytes and its options through to_js) is only exercised for real here."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import runtime_parity
from PIL import Image
from runtime_parity import AUTH, Cloud, FakeRunPod, Local, send
from test_worker_in_pyodide import node  # noqa: F401 - the fixture: node with the pinned Pyodide installed

REPO = Path(__file__).resolve().parents[2]


def _image(kind: str, width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, kind)
    return out.getvalue()


def _image_workflow() -> tuple[str, str, dict[str, Any]]:
    """A shipped workflow with an image parameter: its id, the parameter's name, and values for its other required
    parameters."""
    for path in sorted((REPO / "images" / "worker" / "workflows").glob("*.json")):
        raw = json.loads(path.read_text())
        images = [p["name"] for p in raw["parameters"] if p["type"] == "image"]
        if images:
            others = {p["name"]: "a harbour at dawn" for p in raw["parameters"]
                      if p["required"] and p["type"] == "string"}
            return raw["id"], images[0], others
    raise AssertionError("no shipped workflow has a parameter of type image")


def _scenario(runtime: Any, fake: FakeRunPod) -> dict[str, Any]:
    workflow, image, others = _image_workflow()
    png = _image("PNG")

    def post(target: str, body: bytes, content_type: str) -> dict[str, Any]:
        reply = send(runtime.port, "POST", target, [AUTH, ("Content-Type", content_type)], body)
        return {"status": reply["status"], "json": json.loads(reply["body"]) if reply["body"] else None}

    stored = post("/api/inputs", png, "image/png")
    key = stored["json"]["key"]
    runs_before = len(fake.calls)
    created = post("/api/queue/create", json.dumps({"workflow_id": workflow, "inputs": {**others, image: key}}).encode(),
                   "application/json")
    sent = [json.loads(body) for method, path, body in fake.calls[runs_before:] if path.endswith("/run")]
    missing = post("/api/queue/create", json.dumps({"workflow_id": workflow, "inputs": {
        **others, image: "inputs/" + "0" * 32 + ".png"}}).encode(), "application/json")
    other_type = post("/api/inputs", _image("JPEG"), "image/png")
    served = send(runtime.port, "GET", f"/api/result/{key}", [AUTH], None)
    return {"stored": stored, "key": key, "created": created, "sent": sent, "missing": missing,
            "other_type": other_type, "served": served["status"], "image": image, "png": png}


@pytest.mark.parametrize("pyodide", ["pyodide", "pyodide-py313"])
def test_both_runtimes_store_an_upload_and_send_its_key_to_runpod_alike(pyodide, node, tmp_path):  # noqa: F811
    fake = runtime_parity.FakeRunPod()
    runtimes: list[Any] = []
    try:
        runtimes.append(Local(REPO, tmp_path, fake.base))
        runtimes.append(Cloud(REPO, tmp_path, fake.base, pyodide))
        local, cloud = (_scenario(rt, fake) for rt in runtimes)
        printed = runtimes[1].lines_since(0)
    finally:
        for rt in runtimes:
            rt.stop()
        fake.server.shutdown()
        fake.server.server_close()
    for name, seen in (("local", local), ("cloud", cloud)):
        assert seen["stored"]["status"] == 201, (name, seen["stored"])
        answer = seen["stored"]["json"]
        assert {k: answer[k] for k in ("content_type", "bytes", "width", "height")} == {
            "content_type": "image/png", "bytes": len(seen["png"]), "width": 64, "height": 48}, name
        assert seen["created"]["status"] == 202, (name, seen["created"])
        (run,) = seen["sent"]
        assert run["input"]["inputs"][seen["image"]] == seen["key"], name
        assert seen["missing"]["status"] == 400 and seen["missing"]["json"]["error"]["code"] == "input_image_missing"
        assert seen["missing"]["json"]["error"]["field"] == f"inputs.{seen['image']}", name
        assert seen["other_type"]["status"] == 400 and seen["other_type"]["json"]["error"]["code"] == "invalid_image"
        assert seen["served"] == 404, name
    assert local["stored"]["json"]["sha256"] == cloud["stored"]["json"]["sha256"]
    assert local["missing"]["json"] == cloud["missing"]["json"]
    assert local["other_type"]["json"] == cloud["other_type"]["json"]
    stored_lines = [json.loads(line) for line in printed if '"input.stored"' in line]
    assert [line["data"]["key"] for line in stored_lines] == [cloud["key"]]
