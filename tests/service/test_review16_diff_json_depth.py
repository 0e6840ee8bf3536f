"""A JSON body nested deeper than the API needs is refused alike by both runtimes, before any parser recurses into
it. The Worker's Python is Pyodide, whose JSON parser has no working depth bound: a body the local server (CPython)
refused as nested too deeply (1,000 levels) was parsed in the Worker, and one of 10,000 levels (20 KB, under every
body limit) overflowed the JS stack, a fatal error that kills the Worker's isolate. Checked under the real Pyodide
interpreters the Worker runs on (tests/pyodide's), against CPython here."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ci_policy import require

from service.http import ApiError, Request, parse_json_body

PYODIDE = Path(__file__).resolve().parents[1] / "pyodide"

BODIES = {"100 arrays": b"[" * 100 + b"]" * 100, "200 arrays": b"[" * 200 + b"]" * 200,
          "1,000 arrays": b"[" * 1000 + b"]" * 1000, "10,000 arrays": b"[" * 10_000 + b"]" * 10_000,
          "10,000 objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
          "brackets in a string": b'{"prompt": "' + b"[" * 10_000 + b'"}'}

PROBE = r'''
import json
from service.http import ApiError, Request, parse_json_body

def answer(body):
    try:
        parse_json_body(Request("POST", "/api/queue/create", body=body))
    except ApiError as exc:
        return [exc.status, exc.code, exc.message]
    return "parsed"

json.dumps({name: answer(bytes.fromhex(body)) for name, body in json.loads(BODIES).items()})
'''


def answer(body: bytes) -> Any:
    try:
        parse_json_body(Request("POST", "/api/queue/create", body=body))
    except ApiError as exc:
        return [exc.status, exc.code, exc.message]
    return "parsed"


def _upload_input() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("review16_worker_upload", PYODIDE / "worker_upload.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.upload_input()


@pytest.mark.parametrize("pyodide", ["pyodide", "pyodide-py313"])
def test_a_deeply_nested_body_gets_the_same_refusal_in_the_worker_as_on_the_local_server(pyodide, tmp_path):
    node = shutil.which("node")
    require(node is not None, "node (runs Pyodide for tests/pyodide)")
    require((PYODIDE / "node_modules" / pyodide / "pyodide.mjs").is_file(), "tests/pyodide's node_modules")
    (tmp_path / "upload.json").write_text(json.dumps(_upload_input()))
    bodies = json.dumps({name: body.hex() for name, body in BODIES.items()})
    (tmp_path / "probe.py").write_text(f"BODIES = {bodies!r}\n{PROBE}")
    done = subprocess.run([node, str(PYODIDE / "run_worker.mjs"), "--probe", str(tmp_path / "probe.py"),
                           str(tmp_path / "upload.json"), pyodide], capture_output=True, text=True, check=False,
                          timeout=180)
    assert done.returncode == 0, f"the Worker's Python died: {(done.stdout + done.stderr)[:600]}"
    in_worker = json.loads(done.stdout)["result"]
    local = {name: answer(body) for name, body in BODIES.items()}
    assert in_worker == local
    assert local["100 arrays"] == "parsed" and local["brackets in a string"] == "parsed"
    for name in ("200 arrays", "1,000 arrays", "10,000 arrays", "10,000 objects"):
        assert local[name][:2] == [400, "invalid_json"] and "nested too deeply" in local[name][2], name
