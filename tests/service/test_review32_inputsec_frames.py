"""Input images that hold more than one picture, and headers that lie (docs/INTERFACES.md, "Input images").

ComfyUI's LoadImage decodes every frame of its file (PIL.ImageSequence) and hands the GPU a batch of all those of the
first one's size: a 20 MiB animated PNG or WebP of hundreds of full-size frames passed a header check that read one
frame's size. A multi-picture JPEG (MPO) keeps its first picture on the GPU, yet ComfyUI decodes every one. Each
case runs through POST /api/inputs on both runtimes, or on the header reader the route uses."""

from __future__ import annotations

import io
import struct
import time
from typing import Any

import pytest
from PIL import Image, ImageSequence
from test_review32_inputsvc_uploads import (  # noqa: F401 - runtime, workflows_dir: fixtures
    _refused,
    image_bytes,
    runtime,
    upload,
    workflows_dir,
)

from service.inputs import NotThatImage, read_header


def _frames(count: int, size: tuple[int, int] = (40, 24)) -> list[Image.Image]:
    return [Image.new("RGB", size, (40 * n % 256, 90, 20)) for n in range(count)]


def _saved(kind: str, frames: list[Image.Image], **options: Any) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, kind, save_all=True, append_images=frames[1:], **options)
    return out.getvalue()


def _jpeg_claiming(size: tuple[int, int], seed: int = 0) -> bytes:
    """A 40x24 JPEG from Pillow whose frame header is then rewritten to claim `size`: the size Pillow, and so
    ComfyUI, would decode it at."""
    data = bytearray(image_bytes("image/jpeg", 40, 24, seed=seed))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, size[1], size[0])
    return bytes(data)


def _mpo(pictures: list[bytes], count: int | None = None) -> bytes:
    """A multi-picture JPEG (CIPA DC-007) of the JPEGs `pictures`: the first with an MP index in an APP2 segment
    naming each (`count` of them, all the pictures by default), the others after it. (Pillow's own MPO writer
    misplaces the fourth picture on.)"""
    count = len(pictures) if count is None else count
    entries_at = 8 + 2 + 3 * 12 + 4  # the TIFF header, then the IFD's count, 3 fields and next-IFD offset
    index_size = entries_at + 16 * count
    first_size = len(pictures[0]) + 2 + 2 + 4 + index_size
    tiff_start = 2 + 2 + 2 + 4  # SOI, APP2 marker, its length, "MPF\0"
    offsets = [0]
    for picture in pictures[:-1]:
        offsets.append(offsets[-1] + (first_size if len(offsets) == 1 else len(picture)))
    entries = b"".join(struct.pack("<IIIHH", 0x20030000 if n == 0 else 0, len(pictures[min(n, len(pictures) - 1)]),
                                   0 if n == 0 else offsets[min(n, len(offsets) - 1)] - tiff_start, 0, 0)
                       for n in range(count))
    index = (b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 3)
             + struct.pack("<HHI4s", 0xB000, 7, 4, b"0100") + struct.pack("<HHII", 0xB001, 4, 1, count)
             + struct.pack("<HHII", 0xB002, 7, 16 * count, entries_at) + struct.pack("<I", 0) + entries)
    segment = b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(index)) + b"MPF\0" + index
    return pictures[0][:2] + segment + pictures[0][2:] + b"".join(pictures[1:])


def _mpo_claiming(sizes: list[tuple[int, int]]) -> bytes:
    return _mpo([_jpeg_claiming(size, seed=n) for n, size in enumerate(sizes)])


@pytest.mark.parametrize(("content_type", "kind"), [("image/png", "PNG"), ("image/webp", "WEBP")])
def test_an_animated_png_or_webp_is_refused_saying_comfyui_would_load_every_frame(
        runtime: Any, content_type: str, kind: str) -> None:  # noqa: F811 - the imported fixture
    data = _saved(kind, _frames(3))
    with Image.open(io.BytesIO(data)) as written:
        assert written.n_frames == 3  # what LoadImage's ImageSequence.Iterator would batch
    _refused(runtime, upload(runtime, data, content_type), 400, "invalid_image", "animated", "every frame",
             "one still frame")
    still = image_bytes(content_type, 40, 24)
    assert upload(runtime, still, content_type).status == 201


def test_a_multi_picture_jpeg_counts_every_picture_against_the_pixel_limit(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    # 40x24, then two pictures of 3000x3000: 18,000,960 pixels that ComfyUI decodes, over 4096 x 4096
    data = _mpo_claiming([(40, 24), (3000, 3000), (3000, 3000)])
    with Image.open(io.BytesIO(data)) as mpo:
        assert mpo.format == "MPO" and [f.size for f in ImageSequence.Iterator(mpo)] == [(40, 24), (3000, 3000),
                                                                                         (3000, 3000)]
    error = _refused(runtime, upload(runtime, data, "image/jpeg"), 400, "image_too_large", "3 pictures", "18000960",
                     "16777216")
    assert "40x24" in error["message"]
    pair = upload(runtime, _mpo_claiming([(40, 24), (40, 24)]), "image/jpeg")  # a stereo pair, a gain map: taken
    assert pair.status == 201 and (pair.json["width"], pair.json["height"]) == (40, 24)


def test_a_jpeg_whose_second_frame_header_claims_another_size_is_refused(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    # Pillow takes the last frame header's size (65535 x 65535 here), this reader read the first: 1x1.
    small = bytearray(image_bytes("image/jpeg", 1, 1))
    sof = small.index(b"\xff\xc0")
    length = struct.unpack_from(">H", small, sof + 2)[0]
    second = bytearray(small[sof:sof + 2 + length])
    struct.pack_into(">HH", second, 5, 65535, 65535)
    lying = bytes(small[:sof + 2 + length] + second + small[sof + 2 + length:])
    _refused(runtime, upload(runtime, lying, "image/jpeg"), 400, "invalid_image", "two frame headers")


def test_a_jpeg_padded_with_a_million_empty_segments_is_refused_at_once() -> None:
    whole = image_bytes("image/jpeg")
    padded = whole[:2] + b"\xff\xe0\x00\x02" * 1_000_000 + whole[2:]  # 4 MB, 1,000,000 APP0 segments
    started = time.monotonic()
    with pytest.raises(NotThatImage, match="segments before its image data"):
        read_header(padded, "image/jpeg")
    assert time.monotonic() - started < 0.5


def test_a_multi_picture_index_naming_more_pictures_than_the_api_takes_is_refused() -> None:
    # An MP index is 16 bytes a picture: 1,000 entries naming one 40x24 picture over and over would have ComfyUI
    # decode it 1,000 times, within the pixel limit, and this reader read it as often.
    with pytest.raises(NotThatImage, match="holds 1000 pictures"):
        read_header(_mpo([_jpeg_claiming((40, 24))] * 2, count=1000), "image/jpeg")
    sixteen = _mpo([_jpeg_claiming((40, 24), seed=n) for n in range(16)])
    with Image.open(io.BytesIO(sixteen)) as mpo:
        assert mpo.format == "MPO" and [frame.size for frame in ImageSequence.Iterator(mpo)] == [(40, 24)] * 16
    header = read_header(sixteen, "image/jpeg")
    assert (header.pictures, header.pixels, header.width) == (16, 16 * 40 * 24, 40)
    with pytest.raises(NotThatImage, match="holds 17 pictures"):
        read_header(_mpo([_jpeg_claiming((40, 24), seed=n) for n in range(17)]), "image/jpeg")


def test_a_multi_picture_index_pointing_at_no_picture_is_refused_as_damaged() -> None:
    pair = _mpo([_jpeg_claiming((40, 24)), _jpeg_claiming((40, 24), seed=1)])
    second = len(pair) - len(_jpeg_claiming((40, 24), seed=1))
    with pytest.raises(NotThatImage, match="picture 2 of the multi-picture JPEG"):
        read_header(pair[:second] + b"\0\0" + pair[second + 2:], "image/jpeg")


def test_a_progressive_jpeg_of_hundreds_of_scans_is_refused_as_comfyui_would_decode_it_for_minutes(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    out = io.BytesIO()
    Image.new("L", (2048, 2048), 128).save(out, "JPEG", progressive=True)
    whole = out.getvalue()
    last, end = whole.rindex(b"\xff\xda"), whole.rindex(b"\xff\xd9")
    # Its last scan (16 bytes) again and again: libjpeg goes over all 2048x2048 pixels for each (200: about a
    # second here; 20 MiB of them: hours), and the file is 20 KB.
    crafted = whole[:end] + whole[last:end] * 200 + whole[end:]
    _refused(runtime, upload(runtime, crafted, "image/jpeg"), 400, "invalid_image", "over 100 scans")
    assert upload(runtime, whole, "image/jpeg").status == 201  # as an encoder writes it: a few scans


def test_a_webp_whose_riff_size_disagrees_with_its_body_is_refused_as_libwebp_decodes_none_of_it(
        runtime: Any) -> None:  # noqa: F811 - the imported fixture
    out = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGBA").save(out, "WEBP", exif=b"Exif\0\0II*\0\x08\0\0\0\0\0")
    whole = out.getvalue()
    cut, short_riff = whole[:-10], whole[:4] + struct.pack("<I", 40) + whole[8:]
    for damaged in (cut, short_riff):
        with pytest.raises(OSError), Image.open(io.BytesIO(damaged)) as image:  # what ComfyUI's LoadImage meets
            image.load()
    _refused(runtime, upload(runtime, cut, "image/webp"), 400, "invalid_image", "cut short", str(len(whole)))
    _refused(runtime, upload(runtime, short_riff, "image/webp"), 400, "invalid_image", "run past the 48 bytes")
    assert upload(runtime, whole + b"<html>a tail libwebp ignores</html>", "image/webp").status == 201


@pytest.mark.parametrize(("offset", "value", "words"), [
    (4, 12, "12-bit samples"),  # the frame's sample precision
    (9, 2, "2 colour components"),
    (1, 0xC5, "hierarchical"),  # the marker: SOF5, a differential frame
])
def test_a_jpeg_that_comfyuis_pillow_cannot_decode_is_refused(
        runtime: Any, offset: int, value: int, words: str) -> None:  # noqa: F811 - the imported fixture
    data = bytearray(image_bytes("image/jpeg", 40, 24))
    data[data.index(b"\xff\xc0") + offset] = value
    with pytest.raises((SyntaxError, OSError)), Image.open(io.BytesIO(bytes(data))) as image:
        image.load()  # what ComfyUI's LoadImage meets: a failed job, or (retried by node_helpers.pillow with
        # LOAD_TRUNCATED_IMAGES) a black image rendered from
    _refused(runtime, upload(runtime, bytes(data), "image/jpeg"), 400, "invalid_image", words)


def test_a_multi_picture_index_naming_one_picture_again_is_refused_before_it_is_walked_again() -> None:
    # 16 entries naming the one large second picture: each walk of it would read to the end of the file again.
    pair = [_jpeg_claiming((40, 24)), _jpeg_claiming((40, 24), seed=1) + b"\0" * 1_000_000]
    with Image.open(io.BytesIO(_mpo(pair, count=16))) as mpo:
        assert mpo.n_frames == 16  # Pillow, and ComfyUI's LoadImage, would decode it 15 times
    with pytest.raises(NotThatImage, match="picture 3 of the multi-picture JPEG .MPF. begins inside another"):
        read_header(_mpo(pair, count=16), "image/jpeg")
    assert read_header(_mpo(pair), "image/jpeg").pictures == 2
