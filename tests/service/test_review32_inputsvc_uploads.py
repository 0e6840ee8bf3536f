"""Input images, the service's side (docs/INTERFACES.md, "Input images"): a client uploads an image with
POST /api/inputs, the service reads its header (never its pixels), stores it create-only under inputs/<hex>.<ext>
and answers its key; a create whose workflow has an image parameter takes that key, checks the store holds it,
and sends RunPod the key alone. Every case runs on both runtimes: the local server over HTTP on loopback (uvicorn,
SQLite, moto's S3), and the Cloudflare Worker's entry over the stand-ins of its bindings (D1, R2, fetch)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import socket
import struct
import types
import uuid
import zlib
from collections.abc import Iterator
from http.client import HTTPResponse
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from service_testkit import API_TOKEN, BUCKET, WORKFLOWS, check_log_lines, edge_in_thread
from test_service_cloudflare_entry import R2, Ctx, Fetch, JsException, JsRequest, R2Object, _entry, make_env

from service.s3_store import S3ResultStore
from service.workflows import Registry, WorkflowError, parse_workflow

IMG2IMG = {
    "id": "img2img", "version": "img2img@1.0.0", "description": "An image in, an image out.",
    "parameters": [
        {"name": "prompt", "type": "string", "required": True, "default": None, "min": 1, "max": 500,
         "choices": None, "node": "6", "input": "text"},
        {"name": "image", "type": "image", "required": True, "default": None, "min": None, "max": None,
         "choices": None, "node": "10", "input": "image"},
    ],
    "graph": {"6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}},
              "10": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}}},
}
# max_input_bytes for the runtimes here: above the 64 KiB of any other request's body, and cheap to send over
SMALL_LIMIT = 100_000
AUTH = {"authorization": f"Bearer {API_TOKEN}"}
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


def image_bytes(content_type: str, width: int = 40, height: int = 24, seed: int = 0) -> bytes:
    """A real image of the type, from Pillow, its pixels depending on `seed`."""
    picture = Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, 120))
    out = io.BytesIO()
    picture.save(out, FORMATS[content_type])
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG's signature, its IHDR chunk (CRC right) giving `width` x `height`, and an empty IDAT chunk: what the
    service reads of an image (never its pixels), so it stands for one of that size. Without the IDAT it would be a
    PNG cut short before its image data, refused whatever its size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + struct.pack(">I4sI", 0, b"IDAT", zlib.crc32(b"IDAT")))


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, directory)
    (directory / "img2img.json").write_text(json.dumps(IMG2IMG))
    return directory


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status, self.body, self.headers = status, body, {k.lower(): v for k, v in headers.items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return self.json["error"]


class LocalRuntime:
    """The local server in a thread of this process, over HTTP on loopback; its objects in moto's S3."""

    name = "local"

    def __init__(self, server: Any, s3: Any, fake: Any, log_lines: list[str]) -> None:
        self.server, self.s3, self.fake, self._log = server, s3, fake, log_lines
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self._before = set(self._keys())  # the bucket is the session's: other tests' objects are not ours

    def call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
        reply = self.http.request(method, path, content=body if body else None, headers=headers or {})
        return Answer(reply.status_code, reply.content, dict(reply.headers))

    def _keys(self) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="inputs/")
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stored_inputs(self) -> set[str]:
        return set(self._keys()) - self._before

    def stored(self, key: str) -> tuple[bytes, str]:
        got = self.s3.get_object(Bucket=BUCKET, Key=key)
        return got["Body"].read(), got["ContentType"]

    def runs(self) -> list[dict[str, Any]]:
        return list(self.fake.runs)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log]

    def close(self) -> None:
        self.http.close()


class WritableR2(R2):
    """The R2 binding's stand-in with its `put(key, value, options)` as the Workers runtime has it: `onlyIf`
    `etagDoesNotMatch: "*"` writes only where no object is and answers null otherwise; a `sha256` that is not
    the body's is an error, as R2 rejects it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.failing: str | None = None  # while set, put rejects with it, as R2 does on an internal error
        self.head_failing: str | None = None  # the same, for head

    async def head(self, key: str) -> R2Object | None:
        if self.head_failing:
            raise JsException(self.head_failing)
        return await super().head(key)

    async def put(self, key: str, value: Any, options: dict[str, Any] | None = None) -> R2Object | None:  # type: ignore[override]
        options = options or {}
        self.puts.append((key, options))
        if self.failing:
            raise JsException(self.failing)
        path = self.root / key
        if options.get("onlyIf", {}).get("etagDoesNotMatch") == "*" and path.is_file():
            return None
        data = bytes(value)
        if "sha256" in options and hashlib.sha256(data).hexdigest() != options["sha256"]:
            raise JsException("put: The SHA-256 checksum you specified did not match what we received. (10037)")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.types[key] = options.get("httpMetadata", {}).get("contentType")
        return R2Object(path, self.types[key])


class CloudRuntime:
    """The Worker's entry (`Default.fetch`) over the stand-ins of D1, R2 and fetch."""

    name = "cloud"

    def __init__(self, entry: Any, env: Any, fetch: Fetch, capsys: Any, log_lines: list[str]) -> None:
        self.entry, self.env, self.fetch, self.capsys, self._log = entry, env, fetch, capsys, log_lines
        self.worker = entry.Default(Ctx(), env)
        self.loop = asyncio.new_event_loop()

    def call(self, method: str, path: str, body: bytes | Iterator[bytes] = b"",
             headers: dict[str, str] | None = None) -> Answer:
        reply = self.loop.run_until_complete(self.worker.fetch(JsRequest(method, "https://api.example" + path, body,
                                                                         headers)))
        raw = reply.body
        data = raw.encode() if isinstance(raw, str) else b"" if raw is None else bytes(raw)
        self._log.extend(line for line in self.capsys.readouterr().out.splitlines() if line.startswith("{"))
        return Answer(reply.status, data, reply.headers)

    def stored_inputs(self) -> set[str]:
        inputs = self.env.RESULTS.root / "inputs"
        return {f"inputs/{p.name}" for p in inputs.iterdir()} if inputs.is_dir() else set()

    def stored(self, key: str) -> tuple[bytes, str]:
        return (self.env.RESULTS.root / key).read_bytes(), self.env.RESULTS.types[key]

    def runs(self) -> list[dict[str, Any]]:
        return [json.loads(init["body"]) for url, init in self.fetch.calls if url.endswith("/run")]

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log]

    def close(self) -> None:
        self.loop.close()


@pytest.fixture(params=["local", "cloud"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path, workflows_dir: Path, log_lines: list[str]) -> Iterator[Any]:
    if request.param == "local":
        moto_endpoint, fake, s3 = (request.getfixturevalue(n) for n in ("moto_endpoint", "fake_runpod", "s3"))
        with edge_in_thread(tmp_path, moto_endpoint, fake.base, log_lines, workflows_dir=str(workflows_dir),
                            max_input_bytes=SMALL_LIMIT) as server:
            running = LocalRuntime(server, s3, fake, log_lines)
            yield running
            running.close()
        return
    fake, capsys = request.getfixturevalue("fake_runpod"), request.getfixturevalue("capsys")
    monkeypatch = pytest.MonkeyPatch()
    entries = _entry(monkeypatch, with_jsnull=True)
    entry = next(entries)
    env = make_env(tmp_path / "cf", fake.base, MAX_INPUT_BYTES=str(SMALL_LIMIT))
    env.RESULTS = WritableR2(tmp_path / "cf" / "r2")
    fetch = Fetch()
    entry.Default._app = entry.build_app(env, fetch=fetch, registry=Registry.from_dir(workflows_dir))
    running = CloudRuntime(entry, env, fetch, capsys, log_lines)
    try:
        yield running
    finally:
        running.close()
        next(entries, None)


def upload(runtime: Any, data: bytes, content_type: str | None, token: str | None = API_TOKEN) -> Answer:
    headers = {"content-type": content_type} if content_type is not None else {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return runtime.call("POST", "/api/inputs", data, headers)


def create(runtime: Any, inputs: dict[str, Any]) -> Answer:
    body = json.dumps({"workflow_id": "img2img", "inputs": {"prompt": "the same, at dusk", **inputs}}).encode()
    return runtime.call("POST", "/api/queue/create", body, {**AUTH, "content-type": "application/json"})


# ------------------------------------------------------------------ uploads that are taken


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/webp"])
def test_an_uploaded_image_is_stored_under_a_new_key_and_a_job_created_with_it_sends_runpod_the_key(
        runtime: Any, content_type: str) -> None:
    data = image_bytes(content_type, 40, 24, seed=3)
    answer = upload(runtime, data, content_type)
    assert answer.status == 201, answer.body
    stored = answer.json
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[content_type]
    assert stored["key"].startswith("inputs/") and stored["key"].endswith(f".{ext}")
    assert len(stored["key"]) == len("inputs/") + 32 + 1 + len(ext)
    assert stored == {"key": stored["key"], "content_type": content_type, "bytes": len(data), "width": 40,
                      "height": 24, "sha256": hashlib.sha256(data).hexdigest()}
    assert runtime.stored(stored["key"]) == (data, content_type)
    (line,) = [line for line in runtime.lines() if line["event"] == "input.stored"]
    assert line["data"] == {"key": stored["key"], "bytes": len(data), "content_type": content_type, "width": 40,
                            "height": 24}

    created = create(runtime, {"image": stored["key"]})
    assert created.status == 202, created.body
    (run,) = runtime.runs()
    assert run["input"]["inputs"] == {"prompt": "the same, at dusk", "image": stored["key"]}
    assert data not in json.dumps(run).encode() and "X-Amz" not in json.dumps(run)


def test_the_same_bytes_uploaded_twice_get_two_keys(runtime: Any) -> None:
    data = image_bytes("image/png")
    first, second = (upload(runtime, data, "image/png").json["key"] for _ in range(2))
    assert first != second and runtime.stored_inputs() == {first, second}


def test_a_content_type_with_parameters_and_another_case_names_the_same_type(runtime: Any) -> None:
    answer = upload(runtime, image_bytes("image/jpeg"), "Image/JPEG; charset=binary")
    assert answer.status == 201 and answer.json["content_type"] == "image/jpeg"


def test_an_image_at_the_pixel_limit_is_taken(runtime: Any) -> None:
    answer = upload(runtime, png_claiming(4096, 4096), "image/png")
    assert answer.status == 201 and (answer.json["width"], answer.json["height"]) == (4096, 4096)


# ------------------------------------------------------------------ uploads that are refused


def _refused(runtime: Any, answer: Answer, status: int, code: str, *words: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    error = answer.error
    assert error["code"] == code, error
    for word in words:
        assert word in error["message"], error["message"]
    assert "Traceback" not in error["message"] and "\n" not in error["message"]
    assert runtime.stored_inputs() == set(), "a refused upload stored an object"
    return error


def test_an_empty_body_is_refused(runtime: Any) -> None:
    _refused(runtime, upload(runtime, b"", "image/png"), 400, "empty_body", "empty")


@pytest.mark.parametrize("content_type", [None, "text/plain", "image/gif", "application/octet-stream",
                                          "image/pngx", ""])
def test_an_upload_without_an_image_content_type_is_refused_415(runtime: Any, content_type: str | None) -> None:
    _refused(runtime, upload(runtime, image_bytes("image/png"), content_type), 415, "unsupported_media_type",
             "image/png, image/jpeg or image/webp")


def test_bytes_of_another_format_than_claimed_are_refused_naming_the_format_they_are(runtime: Any) -> None:
    error = _refused(runtime, upload(runtime, image_bytes("image/jpeg"), "image/png"), 400, "invalid_image",
                     "not a PNG image", "JPEG", "Content-Type image/jpeg")
    assert error["message"].count("image/png") == 1
    _refused(runtime, upload(runtime, b"GIF89a" + b"\0" * 40, "image/webp"), 400, "invalid_image", "not a WebP")
    _refused(runtime, upload(runtime, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png"), 400,
             "invalid_image", "does not begin with a PNG signature")


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/webp"])
def test_a_header_cut_short_is_refused(runtime: Any, content_type: str) -> None:
    whole = image_bytes(content_type)
    cut = {"image/png": 20, "image/jpeg": 12, "image/webp": 22}[content_type]
    _refused(runtime, upload(runtime, whole[:cut], content_type), 400, "invalid_image", "cut short")


def test_a_png_claiming_100000_by_100000_is_refused_before_it_reaches_a_gpu(runtime: Any) -> None:
    _refused(runtime, upload(runtime, png_claiming(100_000, 100_000), "image/png"), 400, "image_too_large",
             "100000x100000", "16777216")
    _refused(runtime, upload(runtime, png_claiming(4097, 4096), "image/png"), 400, "image_too_large")
    _refused(runtime, upload(runtime, png_claiming(0, 10), "image/png"), 400, "invalid_image", "0x10")


def test_an_upload_over_the_byte_limit_is_refused_413_and_nothing_is_stored(runtime: Any) -> None:
    data = png_claiming(64, 64) + b"\0" * SMALL_LIMIT
    _refused(runtime, upload(runtime, data, "image/png"), 413, "body_too_large", str(SMALL_LIMIT))
    taken = png_claiming(64, 64) + b"\0" * (SMALL_LIMIT - len(png_claiming(64, 64)))  # exactly at the limit
    assert len(taken) == SMALL_LIMIT and upload(runtime, taken, "image/png").status == 201


@pytest.mark.parametrize("runtime", ["cloud"], indirect=True)
def test_the_cloud_entry_stops_reading_a_chunked_upload_just_past_the_limit(runtime: Any) -> None:
    chunks = iter([png_claiming(64, 64)] + [b"\0" * 10_000] * 100)  # 1 MB, no Content-Length
    answer = runtime.call("POST", "/api/inputs", chunks, {**AUTH, "content-type": "image/png"})
    _refused(runtime, answer, 413, "body_too_large")
    assert len(list(chunks)) >= 80  # the rest was never read


@pytest.mark.parametrize("token", [None, "tok-NotTheApiToken-00000000"])
def test_an_upload_without_the_bearer_token_is_refused_401(runtime: Any, token: str | None) -> None:
    error = _refused(runtime, upload(runtime, image_bytes("image/png"), "image/png", token=token), 401,
                     "unauthorized", "Bearer")
    assert "image" not in error["message"]


def test_only_the_token_holder_may_send_more_than_the_64_kib_any_request_may(runtime: Any) -> None:
    data = png_claiming(8, 8) + b"\0" * 80_000
    _refused(runtime, upload(runtime, data, "image/png", token=None), 401, "unauthorized")
    assert upload(runtime, data, "image/png").status == 201


def test_another_method_on_the_upload_route_is_refused_405(runtime: Any) -> None:
    for method in ("GET", "PUT", "DELETE"):
        answer = runtime.call(method, "/api/inputs", b"", AUTH)
        _refused(runtime, answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "POST"


def test_a_gzipped_upload_is_refused_415(runtime: Any) -> None:
    answer = runtime.call("POST", "/api/inputs", image_bytes("image/png"),
                          {**AUTH, "content-type": "image/png", "content-encoding": "gzip"})
    _refused(runtime, answer, 415, "unsupported_content_encoding")


def test_refusals_are_logged_as_input_refused_with_their_reason(runtime: Any) -> None:
    upload(runtime, image_bytes("image/jpeg"), "image/png")
    upload(runtime, png_claiming(100_000, 100_000), "image/png")
    refused = [(line["event"], line["level"], line.get("reason")) for line in runtime.lines()
               if line["event"] == "input.refused"]
    assert refused == [("input.refused", "warning", "invalid_image"), ("input.refused", "warning", "image_too_large")]


# ------------------------------------------------------------------ creates naming an image


@pytest.mark.parametrize("value", [
    "inputs/ABCDEF0123456789ABCDEF0123456789.png",  # upper-case hex
    "inputs/0123456789abcdef0123456789abcdef.gif",
    "inputs/0123456789abcdef0123456789abcde.png",  # 31 hex
    "inputs/0123456789abcdef0123456789abcdef.png\n",
    "/inputs/0123456789abcdef0123456789abcdef.png",
    "inputs/../results/0123456789abcdef0123456789abcdef/0.png",
    "inputs%2F..%2Fresults%2F0123456789abcdef0123456789abcdef%2F0.png",
    "inputs/..%2F0123456789abcdef0123456789abcdef.png",
    "results/0123456789abcdef0123456789abcdef/0.png",
    "https://bucket.example/inputs/0123456789abcdef0123456789abcdef.png",
    "",
])
def test_a_create_naming_no_upload_key_is_refused_naming_the_field(runtime: Any, value: str) -> None:
    answer = create(runtime, {"image": value})
    error = _refused(runtime, answer, 400, "invalid_input", "inputs.image", "POST /api/inputs")
    assert error["field"] == "inputs.image"
    assert runtime.runs() == []


@pytest.mark.parametrize("value", [42, None, ["inputs/0123456789abcdef0123456789abcdef.png"], {"key": "x"}])
def test_a_create_whose_image_is_not_a_string_is_refused(runtime: Any, value: Any) -> None:
    error = _refused(runtime, create(runtime, {"image": value}), 400, "invalid_input", "inputs.image")
    assert error["field"] == "inputs.image" and runtime.runs() == []


def test_a_create_naming_a_well_formed_key_that_was_never_uploaded_is_refused(runtime: Any) -> None:
    answer = create(runtime, {"image": "inputs/" + "0" * 32 + ".png"})
    error = _refused(runtime, answer, 400, "input_image_missing", "inputs.image", "POST /api/inputs",
                     "deleted after")
    assert error["field"] == "inputs.image" and runtime.runs() == []


def test_a_create_without_its_required_image_is_refused(runtime: Any) -> None:
    body = json.dumps({"workflow_id": "img2img", "inputs": {"prompt": "p"}}).encode()
    answer = runtime.call("POST", "/api/queue/create", body, AUTH)
    assert answer.status == 400 and answer.error["code"] == "missing_input" and runtime.runs() == []


def test_an_uploaded_input_is_never_served_as_a_result(runtime: Any) -> None:
    data = image_bytes("image/png")
    key = upload(runtime, data, "image/png").json["key"]
    for path in (f"/api/result/{key}", f"/api/result/results/..%2F{key}", "/api/result/" + key.replace("/", "%2F")):
        answer = runtime.call("GET", path, b"", AUTH)
        assert answer.status == 404 and data not in answer.body, (path, answer.body)


def test_workflows_list_an_image_parameter_with_its_type(runtime: Any) -> None:
    answer = runtime.call("GET", "/api/workflows", b"", AUTH)
    (img2img,) = [w for w in answer.json["workflows"] if w["id"] == "img2img"]
    assert img2img["parameters"][1] == {"name": "image", "type": "image", "required": True, "default": None,
                                        "min": None, "max": None, "choices": None}


# ------------------------------------------------------------------ the store failing


@pytest.mark.parametrize("runtime", ["cloud"], indirect=True)
def test_the_cloud_store_refusing_an_upload_is_a_503_to_retry_logged_as_input_refused(runtime: Any) -> None:
    runtime.env.RESULTS.failing = "put: We encountered an internal error. Please try again. (10001)"
    answer = upload(runtime, image_bytes("image/png"), "image/png")
    _refused(runtime, answer, 503, "store_unavailable", "retry later")
    assert answer.headers["retry-after"]
    (line,) = [line for line in runtime.lines() if line["event"] == "input.refused"]
    assert line["level"] == "error" and line["reason"] == "store_unavailable"


@pytest.mark.parametrize("runtime", ["cloud"], indirect=True)
def test_a_create_whose_image_r2_cannot_check_is_a_503_and_nothing_is_recorded_or_sent(runtime: Any) -> None:
    key = upload(runtime, image_bytes("image/png"), "image/png").json["key"]
    runtime.env.RESULTS.head_failing = "head: We encountered an internal error. Please try again. (10001)"
    answer = create(runtime, {"image": key})
    assert answer.status == 503 and answer.error["code"] == "store_unavailable" and answer.headers["retry-after"]
    assert "inputs.image" in answer.error["message"] and "retry later" in answer.error["message"]
    assert runtime.runs() == [] and runtime.env.DB.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
    (line,) = [line for line in runtime.lines() if line["event"] == "job.create_failed"]
    assert line["level"] == "error" and line["reason"] == "store_unavailable"


@pytest.mark.parametrize("runtime", ["cloud"], indirect=True)
def test_the_cloud_upload_is_a_create_only_put_with_its_type_and_checksum(runtime: Any) -> None:
    data = image_bytes("image/webp")
    key = upload(runtime, data, "image/webp").json["key"]
    [(put_key, options)] = runtime.env.RESULTS.puts
    assert put_key == key and options == {"httpMetadata": {"contentType": "image/webp"},
                                          "onlyIf": {"etagDoesNotMatch": "*"},
                                          "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("runtime", ["cloud"], indirect=True)  # the local store's: the test after this
def test_a_key_already_taken_in_the_store_is_never_overwritten(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = upload(runtime, image_bytes("image/png", seed=1), "image/png").json["key"]
    hexes = [first[len("inputs/"):-len(".png")]]
    real = uuid.uuid4
    # the next key drawn is the one taken; the next ones random
    monkeypatch.setattr(uuid, "uuid4", lambda: types.SimpleNamespace(hex=hexes.pop(0)) if hexes else real())
    second = upload(runtime, image_bytes("image/png", seed=2), "image/png")
    assert not hexes and second.status == 201 and second.json["key"] != first
    assert runtime.stored(first)[0] == image_bytes("image/png", seed=1)
    assert runtime.stored(second.json["key"])[0] == image_bytes("image/png", seed=2)


def test_the_local_store_writes_an_input_only_where_no_object_is(_store_client: Any, s3: Any) -> None:
    store = S3ResultStore(_store_client, BUCKET)
    key = f"inputs/{uuid.uuid4().hex}.png"
    first, second = image_bytes("image/png", seed=1), image_bytes("image/png", seed=2)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(store.create(key, first, "image/png", hashlib.sha256(first).hexdigest()))
        assert not loop.run_until_complete(store.create(key, second, "image/png", hashlib.sha256(second).hexdigest()))
    finally:
        loop.close()
    got = s3.get_object(Bucket=BUCKET, Key=key)
    assert got["Body"].read() == first and got["ContentType"] == "image/png"


# ------------------------------------------------------------------ the workflow file


@pytest.mark.parametrize(("field", "value"), [("default", "inputs/" + "0" * 32 + ".png"), ("min", 1), ("max", 4096),
                                              ("choices", ["a.png"])])
def test_a_workflow_image_parameter_with_a_default_bound_or_choices_is_refused_naming_it(
        field: str, value: Any) -> None:
    raw = json.loads(json.dumps(IMG2IMG))
    raw["parameters"][1][field] = value
    with pytest.raises(WorkflowError) as refused:
        parse_workflow(json.dumps(raw), "img2img.json")
    assert f"img2img.json: parameters[1].{field} must be null for an image parameter" in str(refused.value)


def test_a_workflow_image_parameter_with_nulls_is_taken() -> None:
    workflow = parse_workflow(json.dumps(IMG2IMG), "img2img.json")
    assert workflow.parameters[1].type == "image"


# ------------------------------------------------------------------ the local edge's limits


def _raw(port: int, head: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        reply = HTTPResponse(sock)
        reply.begin()
        return reply.status, reply.read()


def test_the_local_edge_takes_an_upload_up_to_20_mib_by_default_and_answers_one_over_at_once(
        tmp_path: Path, moto_endpoint: str, fake_runpod: Any, log_lines: list[str], workflows_dir: Path) -> None:
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines,
                        workflows_dir=str(workflows_dir)) as server:
        head = (b"POST /api/inputs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + API_TOKEN.encode()
                + b"\r\ncontent-type: image/png\r\nexpect: 100-continue\r\ncontent-length: %d\r\n\r\n")
        status, over = _raw(server.port, head % (20 * 1024 * 1024 + 1))  # answered before the body is sent
        assert status == 413 and b"20971520-byte limit" in over
        big = png_claiming(64, 64) + b"\0" * (20 * 1024 * 1024 - len(png_claiming(64, 64)))
        reply = httpx.post(server.url + "/api/inputs", content=big, headers={**AUTH, "content-type": "image/png"},
                           timeout=60)
        assert reply.status_code == 201 and reply.json()["bytes"] == 20 * 1024 * 1024
    check_log_lines(list(log_lines))


# ------------------------------------------------------------------ the header reader, on the other encodings


def _encoded(kind: str, mode: str, size: tuple[int, int], **options: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (255, 0, 0, 128) if mode == "RGBA" else "red").save(out, kind, **options)
    return out.getvalue()


@pytest.mark.parametrize(("content_type", "data", "chunk"), [
    ("image/webp", _encoded("WEBP", "RGB", (301, 17), lossless=True), b"VP8L"),
    ("image/webp", _encoded("WEBP", "RGBA", (1025, 3)), b"VP8X"),
    ("image/webp", _encoded("WEBP", "RGB", (5, 4099)), b"VP8 "),
    ("image/jpeg", _encoded("JPEG", "RGB", (301, 17), progressive=True), None),
    ("image/jpeg", _encoded("JPEG", "L", (2, 3)), None),
    ("image/jpeg", _encoded("JPEG", "CMYK", (77, 66)), None),
    ("image/png", _encoded("PNG", "P", (300, 2)), None),
])
def test_the_header_gives_the_size_pillow_wrote_for_every_encoding(content_type: str, data: bytes,
                                                                    chunk: bytes | None) -> None:
    from service.inputs import read_header

    if chunk is not None:
        assert data[12:16] == chunk  # the encoding this case is for
    with Image.open(io.BytesIO(data)) as written:
        expected = written.size
    header = read_header(data, content_type)
    assert (header.width, header.height) == expected and header.content_type == content_type


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/webp"])
def test_every_cut_and_damaged_header_is_a_refusal_never_a_crash(content_type: str) -> None:
    from service.inputs import NotThatImage, read_header

    whole = image_bytes(content_type, 33, 21)
    damaged = [whole[:n] for n in range(len(whole[:400]))]
    damaged += [whole[:i] + bytes([whole[i] ^ flip]) + whole[i + 1:] for i in range(min(len(whole), 200))
                for flip in (0x01, 0x80, 0xFF)]
    for data in damaged:
        try:
            header = read_header(data, content_type)
        except NotThatImage as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 300
        else:
            assert header.width > 0 and header.height > 0


# ------------------------------------------------------------------ a retry after the upload expired (lead's review)


def _forget(runtime: Any, key: str) -> None:
    """The upload gone, as the retention rule deletes it."""
    if runtime.name == "local":
        runtime.s3.delete_object(Bucket=BUCKET, Key=key)
    else:
        (runtime.env.RESULTS.root / key).unlink()


def test_a_retried_create_whose_image_expired_since_answers_the_job_the_first_create_made(runtime: Any) -> None:
    key = upload(runtime, image_bytes("image/png"), "image/png").json["key"]
    body = json.dumps({"workflow_id": "img2img", "inputs": {"prompt": "the same, at dusk", "image": key}}).encode()
    headers = {**AUTH, "content-type": "application/json", "idempotency-key": f"retry-{uuid.uuid4().hex}"}
    first = runtime.call("POST", "/api/queue/create", body, headers)
    assert first.status == 202, first.body
    _forget(runtime, key)
    # Before: 400 input_image_missing, and the client, told its job was refused, sent another (a second bill).
    again = runtime.call("POST", "/api/queue/create", body, headers)
    assert again.status == 202, again.body
    assert again.json["job_id"] == first.json["job_id"] and again.headers.get("idempotent-replayed") == "true"
    assert len(runtime.runs()) == 1
    # A new key (a new request) for the expired image is refused as before.
    refused = runtime.call("POST", "/api/queue/create", body, {**headers, "idempotency-key": uuid.uuid4().hex})
    assert refused.status == 400 and refused.error["code"] == "input_image_missing", refused.body


def test_an_optional_image_parameter_is_refused_in_the_workflow_file_as_the_worker_refuses_it() -> None:
    optional = json.loads(json.dumps(IMG2IMG))
    optional["parameters"][1]["required"] = False
    with pytest.raises(WorkflowError, match=r"parameters\[1\]\.required must be true for a parameter of type image"):
        parse_workflow(json.dumps(optional), "img2img.json")
