"""Input images: the keys a client's uploads are stored under, and what an upload's bytes are, read from their
header alone (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X) with the standard library, so the Worker reads them too."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

# Every upload lives under it: the cloud bucket's lifecycle rule (infra) and the local store's expiry
# (goldgate.local.object_store) delete these keys after storage.result_ttl_days, as they do results.
INPUTS_PREFIX = "inputs/"
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# \Z, not $: $ also matches before a final newline
INPUT_KEY = re.compile(r"^inputs/[0-9a-f]{32}\.(png|jpg|webp)\Z")
INPUT_KEY_SHAPE = "inputs/<32 lowercase hex>.<png|jpg|webp>"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8\xff"
# The JPEG frame headers that give the image's size: SOF0-SOF15 but for DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length: TEM, RST0-RST7 (SOI is the file's first).
_JPEG_BARE = frozenset((0x01, *range(0xD0, 0xD8)))
_MAX_DIMENSION = 2**31 - 1  # PNG's own limit


class NotThatImage(ValueError):
    """The bytes are not an image of the claimed type, or its header is cut short or unreadable; the message says
    which, in words a client can act on."""


@dataclass(frozen=True)
class ImageHeader:
    content_type: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def media_type(content_type: str | None) -> str:
    """A Content-Type's media type, lower-cased, its parameters dropped ("" for none)."""
    return (content_type or "").split(";")[0].strip(" \t").lower()


def sniffed_type(data: bytes) -> str | None:
    """Which of the three types `data` begins as (its magic bytes), or None."""
    if data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if data.startswith(_JPEG_SOI):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read_header(data: bytes, content_type: str) -> ImageHeader:
    """The size of the `content_type` image `data` holds, from its header; NotThatImage when the bytes are another
    format (named when it is one of the three), or the header is cut short or malformed."""
    name = _NAMES[content_type]
    found = sniffed_type(data)
    if found != content_type:
        other = f"it is a {_NAMES[found]} image: send it with Content-Type {found}" if found else \
            f"it does not begin with a {name} signature"
        raise NotThatImage(f"the body is not a {name} image as its Content-Type {content_type} says: {other}")
    try:
        width, height = _READERS[content_type](data)
    except (struct.error, IndexError):
        raise NotThatImage(f"the {name} header is cut short: the body ends before the image's size; send the "
                           "whole file") from None
    if not (0 < width <= _MAX_DIMENSION and 0 < height <= _MAX_DIMENSION):
        raise NotThatImage(f"the {name} header gives a size of {width}x{height}, which no image has")
    return ImageHeader(content_type, width, height)


def _png(data: bytes) -> tuple[int, int]:
    length, kind, width, height = struct.unpack_from(">I4sII", data, 8)
    if kind != b"IHDR" or length != 13:
        raise NotThatImage("the PNG's first chunk is not its IHDR header; the file is damaged")
    return width, height


def _jpeg(data: bytes) -> tuple[int, int]:
    pos = 2
    while True:
        if data[pos] != 0xFF:
            raise NotThatImage(f"the JPEG has no marker where one belongs (byte {pos}); the file is damaged")
        while data[pos] == 0xFF:  # fill bytes may come before a marker
            pos += 1
        marker = data[pos]
        pos += 1
        if marker in _JPEG_BARE:
            continue
        if marker in (0xD9, 0xDA):  # EOI, or the scan's data, before any frame header
            raise NotThatImage("the JPEG has no frame header (SOF) before its image data; the file is damaged")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise NotThatImage(f"the JPEG has a segment of length {length} (byte {pos}); the file is damaged")
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, pos + 3)
            if height == 0:  # its height given later, by a DNL segment after the scan: rare, and unbounded here
                raise NotThatImage("the JPEG's frame header leaves its height to a DNL segment, which this API does "
                                   "not read; save it again with any common tool")
            return width, height
        pos += length


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if len(chunk) < 4:
        raise struct.error
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            if len(data) < 26:
                raise struct.error
            raise NotThatImage("the WebP's VP8 frame has no start code; the file is damaged")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise NotThatImage("the WebP's VP8L data has no signature byte; the file is damaged")
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        if len(data) < 30:
            raise struct.error
        return width, height
    raise NotThatImage(f"the WebP's first chunk is {chunk!r}, not VP8, VP8L or VP8X; the file is damaged")


_NAMES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
_READERS = {"image/png": _png, "image/jpeg": _jpeg, "image/webp": _webp}
