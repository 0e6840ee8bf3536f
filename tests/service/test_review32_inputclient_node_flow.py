"""An image-to-image client written from the docs alone (review32_inputclient_client.mjs: Node 20's own fetch, no
packages) runs against a local STAGING stack brought up as the README says: it lists the workflows, uploads a PNG, a
JPEG and a WebP, meets each documented refusal, creates sdxl-img2img jobs (one replayed by its Idempotency-Key),
polls them until `settled` and downloads each result through its signed url. Every answer it met is held to
docs/openapi.json, and what the docs tell such a client holds: the render's size, a 401 (not a 413) for an upload
without the token, and the workflow listing's parameters."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from ci_policy import needs
from openapi_spec_validator import validate
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from goldgate.local.platform import LocalPlatform

REPO = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("review32_inputclient_client.mjs")
DOC = json.loads((REPO / "docs" / "openapi.json").read_text(encoding="utf-8"))
URI = "urn:goldgate:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC, default_specification=DRAFT202012))

pytestmark = needs(shutil.which("node") is not None, "node")


def _images(folder: Path) -> None:
    """The client's inputs: three stills of one size, one whose sides are no multiple of 8, a JPEG whose EXIF
    orientation (6: turn 90 degrees clockwise to view) makes it portrait, and one over 4096 x 4096 pixels."""
    folder.mkdir()
    still = Image.new("RGB", (640, 448), (200, 120, 40))
    for x in range(0, 640, 16):
        still.putpixel((x, x % 448), (20, 40, 220))
    still.save(folder / "in.png")
    still.save(folder / "in.jpg", quality=90)
    still.save(folder / "in.webp", quality=80)
    Image.new("RGB", (641, 449), (10, 200, 40)).save(folder / "odd.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    still.save(folder / "rot.jpg", exif=exif.tobytes())
    Image.new("L", (5000, 4000)).save(folder / "huge.png", optimize=True)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The client's run against a fresh STAGING stack: its JSON summary, with the stack's api_url and token."""
    tmp = tmp_path_factory.mktemp("inputclient")
    home, images = tmp / "home", tmp / "images"
    _images(images)
    env = {**os.environ, "GOLDGATE_HOME": str(home)}
    env.pop("GOLDGATE_TARGET", None)
    goldgate = Path(sys.executable).with_name("goldgate")
    try:
        up = subprocess.run([str(goldgate), "up", "staging", "--json"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=180, check=False)
        assert up.returncode == 0, f"goldgate up staging failed: {up.stderr[-2000:]}"
        status = json.loads(up.stdout)
        run = subprocess.run(["node", str(CLIENT), status["api_url"], status["api_token_file"], str(images)],
                             capture_output=True, text=True, timeout=300, check=False)
        assert run.stdout.strip(), f"the Node client printed nothing: {run.stderr[-3000:]}"
        summary = json.loads(run.stdout)
        token = Path(status["api_token_file"]).read_text(encoding="utf-8").strip()
        yield {**summary, "api_url": status["api_url"], "token": token, "images": images}
    finally:
        LocalPlatform(home).down("staging")


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, item in DOC["paths"].items():
        pattern = re.sub(r"\{key\}", ".+", re.sub(r"\{(?!key\})[^}]+\}", "[^/]+", template))
        if re.fullmatch(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"openapi.json has no operation for {method} {path}")


def _resolved(node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    pointer = None
    while "$ref" in node:
        pointer = node["$ref"]
        node = DOC
        for part in pointer.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def _openapi_faults(exchange: dict[str, Any]) -> list[str]:
    """What of one answer the document does not describe: its status, a header it requires or constrains, its
    JSON body's schema."""
    method, path, status = exchange["method"], exchange["path"], exchange["status"]
    template, operation = _operation(method, path)
    where = f"{method} {path} {status}"
    if str(status) not in operation["responses"]:
        return [f"{where}: status not listed (body {exchange['body']})"]
    response, pointer = _resolved(operation["responses"][str(status)])
    if pointer is None:
        escaped = template.replace("~", "~0").replace("/", "~1")
        pointer = f"#/paths/{escaped}/{method.lower()}/responses/{status}"
    faults = []
    for name, header in response.get("headers", {}).items():
        header, _ = _resolved(header)
        value = exchange["headers"].get(name.lower())
        if value is None:
            if header.get("required"):
                faults.append(f"{where}: no {name} header")
        elif not jsonschema.Draft202012Validator(header["schema"]).is_valid(value):
            faults.append(f"{where}: {name}: {value!r}")
    if exchange["body"] is not None:
        if "application/json" not in response.get("content", {}):
            return [*faults, f"{where}: a JSON body the document does not describe"]
        schema = {"$ref": f"{URI}{pointer}/content/application~1json/schema"}
        validator = jsonschema.Draft202012Validator(schema, registry=REGISTRY)
        faults += [f"{where}: {error.message[:300]}" for error in validator.iter_errors(exchange["body"])]
    return faults


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_node_client_runs_the_documented_flow_and_openapi_describes_every_answer_it_met(flow) -> None:
    validate(DOC)
    failed = [(c["name"], c["detail"]) for c in flow["checks"] if not c["ok"]]
    assert not failed, failed
    assert len(flow["checks"]) >= 30
    met = {(x["method"], x["path"].split("/")[2] if x["path"].startswith("/api/") else x["path"], x["status"])
           for x in flow["exchanges"]}
    assert {("POST", "inputs", 201), ("POST", "inputs", 400), ("POST", "inputs", 401), ("POST", "inputs", 413),
            ("POST", "inputs", 415), ("POST", "queue", 202), ("POST", "queue", 400), ("POST", "queue", 422),
            ("GET", "status", 200), ("GET", "result", 200), ("GET", "workflows", 200)} <= met, met
    faults = [fault for exchange in flow["exchanges"] for fault in _openapi_faults(exchange)]
    assert not faults, faults
    # The listing's parameters are openapi's Parameter, without the workflow file's node and input: INTERFACES's
    # "(above)" points at the file's format, so it says what the listing leaves out.
    workflows = httpx.get(f"{flow['api_url']}/api/workflows", headers={"Authorization": f"Bearer {flow['token']}"})
    fields = {name for w in workflows.json()["workflows"] for p in w["parameters"] for name in p}
    assert fields == set(DOC["components"]["schemas"]["Parameter"]["properties"])
    assert not fields & {"node", "input"}
    public_api = _section((REPO / "docs" / "INTERFACES.md").read_text(encoding="utf-8"), "## Public API (client -> service)")
    listing = public_api.split("- `GET /api/workflows`", 1)[1].split("\n- ", 1)[0]
    assert "without its `node` and `input`" in " ".join(listing.split()), listing


def test_a_render_is_upright_and_cut_to_multiples_of_8_as_the_readme_and_openapi_tell_a_client(flow) -> None:
    renders = {r["file"]: r for r in flow["renders"]}
    for name in ("in.png", "in.jpg", "in.webp"):
        assert renders[name]["result"] == renders[name]["upload"] == {"width": 640, "height": 448}, renders[name]
    # The upload answers its header's size; ComfyUI's LoadImage turns the image upright (EXIF orientation) and the
    # VAE encode cuts each side down to a multiple of 8, centred.
    assert renders["odd.png"]["upload"] == {"width": 641, "height": 449}
    assert renders["odd.png"]["result"] == {"width": 640, "height": 448}
    assert renders["rot.jpg"]["upload"] == {"width": 640, "height": 448}
    assert renders["rot.jpg"]["result"] == {"width": 448, "height": 640}
    readme = " ".join(_section((REPO / "README.md").read_text(encoding="utf-8"), "## Sending an image").split())
    assert "The render has the image's size." not in readme
    assert "EXIF orientation" in readme and "renders 448x640" in readme, readme
    assert "multiple of 8" in readme and "641x449 renders 640x448" in readme, readme
    stored = DOC["components"]["schemas"]["InputStored"]["properties"]
    for side in ("width", "height"):
        assert "EXIF orientation" in stored[side]["description"] and "multiple of 8" in stored[side]["description"]


def test_an_upload_without_the_token_is_a_401_however_large_as_openapi_says(flow) -> None:
    # httpx reads the answer even when the server closes before taking the whole body (Node's fetch often fails
    # ECONNRESET there instead: the local server closes such a connection unread).
    png = (flow["images"] / "in.png").read_bytes()
    over = png + b"\0" * (20 * 1024 * 1024 + 1 - len(png))
    answers = [httpx.post(f"{flow['api_url']}/api/inputs", content=body, headers={"Content-Type": "image/png"},
                          timeout=60) for body in (png, png + b"\0" * 2 * 1024 * 1024, over)]
    for answer in answers:
        assert (answer.status_code, answer.json()["error"]["code"]) == (401, "unauthorized"), answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    operation = DOC["paths"]["/api/inputs"]["post"]
    too_large = operation["responses"]["413"]["description"]
    assert "without the bearer token, the body is over" not in too_large, too_large
    assert "without the bearer token is a 401" in too_large, too_large
    assert "one without it is a 401, not a 413" in operation["description"]
    with_token = httpx.post(f"{flow['api_url']}/api/inputs", content=over,
                            headers={"Content-Type": "image/png", "Authorization": f"Bearer {flow['token']}"},
                            timeout=60)
    assert (with_token.status_code, with_token.json()["error"]["code"]) == (413, "body_too_large")
