"""The stand-in `workers.Response` refuses what the Python Workers SDK's refuses (its `__init__` in workerd's
src/pyodide/internal/workers-api and in workers-runtime-sdk): a body of Python bytes, bytearray or memoryview,
or a JS Uint8Array (releases before bytes support check JS bodies by constructor name, and "Uint8Array" was not
one of them); the `status_text` keyword, not JS's `statusText`; headers other than a dict, a list of pairs or a JS
Headers. It used to convert bytes with to_js, so a Worker answering raw bytes passed here and raised TypeError on
Cloudflare. The Worker now hands any non-JSON bytes body over as a JS ArrayBuffer, which every release takes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ci_policy import require
from worker_upload import upload_input

HERE = Path(__file__).resolve().parent

PROBE = r'''
import json
import types

import js
import workers
from service.cloudflare_entry import to_workers_response
from service.http import Response

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def refused(make):
    try:
        make()
    except TypeError as exc:
        return str(exc)
    return None


async def sent(build):
    try:
        reply = build().js_object
    except Exception as exc:  # what the runtime would make of it: an exception out of Default.fetch
        return {"error": f"{type(exc).__name__}: {exc}"}
    body = (await reply.arrayBuffer()).to_bytes()
    return {"status": reply.status, "headers": {k: v for k, v in reply.headers.entries()}, "body": body.hex()}


refusals = {
    "bytes": refused(lambda: workers.Response(b"abc")),
    "bytearray": refused(lambda: workers.Response(bytearray(b"abc"))),
    "memoryview": refused(lambda: workers.Response(memoryview(b"abc"))),
    "uint8array": refused(lambda: workers.Response(js.Uint8Array.new(3))),
    "statusText": refused(lambda: workers.Response("x", statusText="Fine")),
    "mapping_headers": refused(lambda: workers.Response("x", headers=types.MappingProxyType({"a": "b"}))),
}
taken = {
    "array_buffer": await sent(lambda: workers.Response(js.ArrayBuffer.new(3), status=201)),
    "str_with_pairs": await sent(lambda: workers.Response("hi", status=202, status_text="Fine",
                                                          headers=[("x-a", "1")])),
    "none": await sent(lambda: workers.Response(None, status=204)),
}
entry = {
    "png": await sent(lambda: to_workers_response(Response(200, PNG, {"content-type": "image/png"}))),
    "octets": await sent(lambda: to_workers_response(Response(
        200, bytearray(b"\x00\xff" * 3), {"content-type": "application/octet-stream"}))),
    "json": await sent(lambda: to_workers_response(Response(400, b'{"error": 1}', {"content-type": "application/json"}))),
}
json.dumps({"refusals": refusals, "taken": taken, "entry": entry, "png": PNG.hex()})
'''


@pytest.fixture(scope="module", params=["pyodide", "pyodide-py313"])
def probed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = shutil.which("node")
    require(node is not None, "node (runs Pyodide for tests/pyodide)")
    require((HERE / "node_modules" / request.param / "pyodide.mjs").is_file(), "tests/pyodide's node_modules")
    scratch = tmp_path_factory.mktemp("sdk-response")
    (scratch / "upload.json").write_text(json.dumps(upload_input()))
    (scratch / "probe.py").write_text(PROBE)
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), "--probe", str(scratch / "probe.py"),
                           str(scratch / "upload.json"), request.param],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["result"]


def test_the_sdk_response_stand_in_refuses_python_bytes_and_typed_arrays_as_the_sdk_does(probed):
    refusals = probed["refusals"]
    for kind, name in (("bytes", "bytes"), ("bytearray", "bytearray"), ("memoryview", "memoryview"),
                       ("uint8array", "Uint8Array")):
        assert refusals[kind] == f"Unsupported type in Response: {name}", kind


def test_the_sdk_response_stand_in_takes_only_the_sdks_keywords_and_header_shapes(probed):
    assert "statusText" in (probed["refusals"]["statusText"] or "")  # the SDK's keyword is status_text
    assert probed["refusals"]["mapping_headers"] == "Received unexpected type for headers argument"


def test_the_sdk_response_stand_in_takes_what_every_sdk_release_takes(probed):
    taken = probed["taken"]
    assert taken["array_buffer"] == {"status": 201, "headers": {}, "body": "000000"}
    assert taken["str_with_pairs"]["status"] == 202 and taken["str_with_pairs"]["headers"]["x-a"] == "1"
    assert taken["str_with_pairs"]["body"] == b"hi".hex()
    assert taken["none"] == {"status": 204, "headers": {}, "body": ""}


def test_a_worker_answer_of_raw_bytes_reaches_the_client_whole_not_a_type_error(probed):
    png = probed["entry"]["png"]
    assert "error" not in png, png["error"]
    assert png["status"] == 200 and png["headers"]["content-type"] == "image/png" and png["body"] == probed["png"]
    octets = probed["entry"]["octets"]
    assert "error" not in octets, octets["error"]
    assert octets["body"] == (b"\x00\xff" * 3).hex()
    answer = probed["entry"]["json"]
    assert answer["status"] == 400 and bytes.fromhex(answer["body"]) == b'{"error": 1}'
