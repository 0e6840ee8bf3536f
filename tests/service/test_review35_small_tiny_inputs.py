"""An input image with a side under 8 pixels is refused at upload (400 `image_too_small`), nothing stored: taken,
it failed its job at ComfyUI's VAEEncode (which crops each side to a multiple of 8, leaving nothing), on the GPU,
after the job was queued and billed. Both runtimes: the local server over HTTP on loopback, and the Worker's entry."""

from __future__ import annotations

from typing import Any

import pytest
from test_review32_inputsec_frames import _mpo_claiming
from test_review32_inputsvc_uploads import (  # noqa: F401 - runtime, workflows_dir: fixtures
    _refused,
    create,
    image_bytes,
    runtime,
    upload,
    workflows_dir,
)


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/webp"])
@pytest.mark.parametrize("size", [(4, 4), (7, 64), (64, 5), (1, 1)])
def test_an_image_with_a_side_under_8_pixels_is_refused_naming_its_size_and_the_minimum(
        runtime: Any, content_type: str, size: tuple[int, int]) -> None:  # noqa: F811 - the imported fixture
    answer = upload(runtime, image_bytes(content_type, *size), content_type)
    _refused(runtime, answer, 400, "image_too_small", f"{size[0]}x{size[1]}", "8-pixel minimum", "scale it up")
    (line,) = [line for line in runtime.lines() if line["event"] == "input.refused"]
    assert (line["level"], line["reason"]) == ("warning", "image_too_small")


def test_an_image_of_8_pixels_a_side_is_taken_and_a_job_is_created_with_it(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    stored = upload(runtime, image_bytes("image/png", 8, 8), "image/png")
    assert stored.status == 201 and (stored.json["width"], stored.json["height"]) == (8, 8)
    assert create(runtime, {"image": stored.json["key"]}).status == 202


def test_a_multi_picture_jpeg_is_judged_by_its_first_picture_the_one_comfyui_keeps(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    _refused(runtime, upload(runtime, _mpo_claiming([(4, 4), (40, 24)]), "image/jpeg"), 400, "image_too_small",
             "4x4")
    taken = upload(runtime, _mpo_claiming([(40, 24), (4, 4)]), "image/jpeg")
    assert taken.status == 201 and (taken.json["width"], taken.json["height"]) == (40, 24)
