"""An upload ComfyUI's LoadImage cannot open at all (Pillow fails, with LOAD_TRUNCATED_IMAGES too) is refused, as
service/inputs.py's docstring promises ("decode nothing at all (a job failed, billed, every time) is refused too"):
a PNG cut short before its image data (an interrupted download of a file whose metadata, an XMP packet or an ICC
profile, comes before its IDAT), as a JPEG cut before its scan already is; and a JPEG whose headers end in EOI with
no scan at all."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile, ImageOps, ImageSequence
from PIL.PngImagePlugin import PngInfo

from service.inputs import NotThatImage, read_header


def _png_with_metadata() -> bytes:
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + "x" * 40_000 + "</x:xmpmeta>")
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _comfyui_loads(data: bytes) -> None:
    """As ComfyUI's LoadImage opens a file (node_helpers.pillow retries with LOAD_TRUNCATED_IMAGES)."""
    for truncated in (False, True):
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
        try:
            with Image.open(io.BytesIO(data)) as image:
                for frame in ImageSequence.Iterator(image):
                    ImageOps.exif_transpose(frame).convert("RGB")
            return
        except Exception:  # tried again, as ComfyUI does
            if truncated:
                raise
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False


@pytest.mark.parametrize("cut", ["inside its metadata chunk", "right before IDAT"])
def test_a_png_cut_short_before_its_image_data_is_refused_at_upload(cut: str) -> None:
    whole = _png_with_metadata()
    idat = whole.index(b"IDAT") - 4
    data = whole[:idat // 2] if cut == "inside its metadata chunk" else whole[:idat]
    with pytest.raises(Exception):  # noqa: B017 - what the worker would meet: the job fails
        _comfyui_loads(data)
    with pytest.raises(NotThatImage, match="PNG"):
        read_header(data, "image/png")


def test_a_jpeg_with_no_scan_before_its_end_is_refused_at_upload() -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "JPEG")
    whole = out.getvalue()
    data = whole[:whole.index(b"\xff\xda")] + b"\xff\xd9"  # its headers, then EOI
    with pytest.raises(Exception):  # noqa: B017 - what the worker would meet: the job fails
        _comfyui_loads(data)
    with pytest.raises(NotThatImage, match="JPEG"):
        read_header(data, "image/jpeg")
