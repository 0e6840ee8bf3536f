"""Mutation audit of the ComfyUI emulator's LoadImage (goldgate/local/comfyui/backend.py): it lists only the image
files at the top of its input folder, loads no file of the host's outside that folder, and sizes a render by the
image as ComfyUI shows it (its EXIF orientation applied)."""

from __future__ import annotations

import io

import requests
from PIL import Image
from test_review32_inputwk_comfyui_inputs import RED, _img2img, _listed, _render, _upload, comfy  # noqa: F401

from goldgate.local.comfyui import ComfyUIEmulator


def test_a_folder_with_an_image_like_name_is_not_listed_as_an_input_image(comfy: ComfyUIEmulator) -> None:  # noqa: F811
    _upload(comfy, "in.png", RED, subfolder="holiday.png", overwrite="true")
    _upload(comfy, "top.png", RED)
    assert _listed(comfy) == ["top.png"]


def test_an_image_beside_the_input_folder_is_refused_as_comfyui_refuses_a_file_it_does_not_have(
        comfy: ComfyUIEmulator) -> None:  # noqa: F811
    (comfy.backend.dirs["input"].parent / "secret.png").write_bytes(RED)
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": _img2img("../secret.png")}, timeout=30)
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["node_errors"]["10"]["errors"]
    assert error["type"] == "custom_validation_failed" and error["details"] == "image - Invalid image file: ../secret.png"


def test_a_photo_taken_sideways_renders_at_the_size_its_exif_orientation_gives(comfy: ComfyUIEmulator) -> None:  # noqa: F811
    picture = Image.new("RGB", (96, 64), (200, 10, 10))
    exif = picture.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    out = io.BytesIO()
    picture.save(out, "JPEG", exif=exif.tobytes())
    _upload(comfy, "sideways.jpg", out.getvalue())
    straight = {"10": {"class_type": "LoadImage", "inputs": {"image": "sideways.jpg"}},
                "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "same"}}}
    assert Image.open(io.BytesIO(_render(comfy, straight))).size == (64, 96)


def test_an_output_named_with_its_annotation_is_loaded_from_the_output_folder(comfy: ComfyUIEmulator) -> None:  # noqa: F811
    picture = io.BytesIO()
    Image.new("RGB", (40, 24), (9, 9, 9)).save(picture, "PNG")
    (comfy.backend.dirs["output"] / "earlier_00001_.png").write_bytes(picture.getvalue())
    again = {"10": {"class_type": "LoadImage", "inputs": {"image": "earlier_00001_.png [output]"}},
             "9": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "again"}}}
    assert Image.open(io.BytesIO(_render(comfy, again))).size == (40, 24)


def test_vae_encode_takes_its_pixels_and_its_vae_as_comfyuis_does(comfy: ComfyUIEmulator) -> None:  # noqa: F811
    info = requests.get(f"{comfy.url}/object_info/VAEEncode", timeout=30).json()["VAEEncode"]
    assert info["input"]["required"] == {"pixels": ["IMAGE"], "vae": ["VAE"]}
    _upload(comfy, "a.png", RED)
    graph = _img2img("a.png")
    del graph["11"]["inputs"]["vae"]
    answer = requests.post(f"{comfy.url}/prompt", json={"prompt": graph}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert [e["type"] for e in answer.json()["node_errors"]["11"]["errors"]] == ["required_input_missing"]


def test_an_img2img_prompt_saves_one_image_for_its_one_loaded_image(comfy: ComfyUIEmulator) -> None:  # noqa: F811
    _upload(comfy, "a.png", RED)
    _render(comfy, _img2img("a.png"))
    [entry] = comfy.backend.history().values()
    assert len(entry["outputs"]["9"]["images"]) == 1
