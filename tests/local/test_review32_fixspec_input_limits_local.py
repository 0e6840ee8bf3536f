"""A local stack's api.max_input_bytes and api.max_input_pixels reach the service `goldgate up` starts: a stack file
with a smaller max_input_pixels refuses an upload (400 image_too_large) that a stack with the default takes."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import yaml
from PIL import Image
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform
from service.config import ServiceConfig


def _with_api(home: Path, **api: Any) -> Path:
    """The shipped local stacks (as the tests' stack file), STAGING's api block given `api`."""
    path = stacks_file(home)
    doc = yaml.safe_load(path.read_text())
    doc["stacks"]["staging"]["api"].update(api)
    path.write_text(yaml.safe_dump(doc))
    return path


def _host_config(home: Path, stacks: Path) -> dict[str, Any]:
    """The config the local STAGING stack host writes for its service (no process started)."""
    from goldgate.local.stackhost import StackHost

    host = StackHost("staging", home, stacks)
    # What `start()` sets before any service starts (the emulators' addresses); none is contacted here.
    host.runpod, host.endpoint_id = SimpleNamespace(endpoint_base="http://127.0.0.1:9/v2"), "ep-test"
    host.s3_url = "http://127.0.0.1:9"
    try:
        return host.service_config(None)
    finally:
        host.listener.close()


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (200, 40, 90)).save(out, format="PNG")
    return out.getvalue()


def _upload(platform: LocalPlatform, image: bytes) -> httpx.Response:
    status = platform.status("staging")
    assert status.running and status.api_url
    with httpx.Client(base_url=status.api_url, timeout=30,
                      headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as api:
        return api.post("/api/inputs", content=image, headers={"Content-Type": "image/png"})


def test_the_stack_host_gives_its_service_the_stacks_input_limits(home: Path) -> None:
    config = _host_config(home, _with_api(home, max_input_bytes=1_000_000, max_input_pixels=2_048))
    assert (config["max_input_bytes"], config["max_input_pixels"]) == (1_000_000, 2_048)
    taken = ServiceConfig.from_mapping(config)
    assert (taken.max_input_bytes, taken.max_input_pixels) == (1_000_000, 2_048)


def test_a_stack_with_a_smaller_max_input_pixels_refuses_an_upload_the_default_takes(home: Path) -> None:
    larger, smaller = _png(64), _png(32)  # 4,096 and 1,024 pixels
    default = LocalPlatform(home, stacks_file(home))
    default.up("staging", timeout_s=90)
    try:
        taken = _upload(default, larger)
        assert taken.status_code == 201, taken.text
        assert (taken.json()["width"], taken.json()["height"]) == (64, 64)
    finally:
        default.down("staging")

    limited = LocalPlatform(home, _with_api(home, max_input_pixels=1_024))
    limited.up("staging", timeout_s=90)
    try:
        refused = _upload(limited, larger)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "image_too_large", refused.text
        assert "1024" in refused.json()["error"]["message"], refused.text
        assert _upload(limited, smaller).status_code == 201  # at the stack's limit: taken
    finally:
        limited.down("staging")
