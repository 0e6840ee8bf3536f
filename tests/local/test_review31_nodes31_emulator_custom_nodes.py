"""The ComfyUI emulator and the image's custom nodes (custom_nodes.yaml beside the snapshot's models). A real ComfyUI in
the image runs them; the emulator runs no custom node's code. So it answers a prompt using one as ComfyUI answers a
node it lacks (`missing_node_type`, "Node '<type>' not found. The custom node may not be installed."), its local-target
note naming the entry that installs it (before, the note said only that a real ComfyUI "may have" the node), and lists
none in /object_info (it cannot state their inputs or outputs)."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import yaml
from comfy_support import comfyui, prompt_graph

PIN = "0123456789abcdef0123456789abcdef01234567"


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_a_declared_custom_node_is_refused_as_comfyui_refuses_a_missing_node_naming_its_entry(tmp_path: Path):
    # The local image store's snapshot layout: <snapshot>/models beside <snapshot>/worker.
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "custom_nodes": [
        {"url": "https://example.invalid/team/tiny-node.git", "commit": PIN, "nodes": ["Tiny Invert"]}]}))
    graph = prompt_graph()
    graph["10"] = {"class_type": "Tiny Invert", "inputs": {"image": ["8", 0]}}
    graph["9"]["inputs"]["images"] = ["10", 0]
    with comfyui(tmp_path) as comfy:
        status, body = _call(comfy.port, "POST", "/prompt", {"prompt": graph})
        assert status == 400
        error = body["error"]
        assert error["type"] == "missing_node_type" and error["extra_info"]["node_id"] == "10"
        assert error["message"].startswith("Node 'Tiny Invert' not found. The custom node may not be installed. "
                                           "[local target: the image installs 'Tiny Invert' with the custom node "
                                           f"tiny-node (https://example.invalid/team/tiny-node.git at {PIN[:12]})")
        assert "--target cloud" in error["message"]

        graph["10"]["class_type"] = "Undeclared Invert"   # a type nobody declares: the note as before
        status, body = _call(comfy.port, "POST", "/prompt", {"prompt": graph})
        assert status == 400 and "a real ComfyUI may have" in body["error"]["message"]

        status, info = _call(comfy.port, "GET", "/object_info")
        assert status == 200 and "Tiny Invert" not in info and "SaveImage" in info
