"""Perceptual image comparison with Pillow: two renders of the same seed and prompt should be a few bits
apart in dHash (64-bit, Hamming distance 0..64); a broken model or workflow lands far away. dHash sees only
grey-level gradients, so a colour thumbnail (8x8 RGB box averages) is kept too: a render with the right
shapes but lost, swapped or crushed colours is far from the reference in mean colour difference (0..255)."""

from __future__ import annotations

import base64
import io
import struct
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from goldgate.errors import GoldgateError

# Decoding a hostile file must not exhaust memory: Pillow refuses beyond this many pixels.
MAX_PIXELS = 64_000_000
HASH_SIZE = 8
HASH_BITS = HASH_SIZE * HASH_SIZE  # the largest dHash distance: every bit differs
COLOR_MAX = 255  # the largest mean colour difference: black against white in every cell
PREVIEW_SIZE = 256  # the longest side of a report's preview of a render or a reference
PREVIEW_PREFIX = "data:image/jpeg;base64,"
# What Pillow's decoders raise on a damaged file besides OSError: a broken PNG chunk mid-image is a SyntaxError.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, TypeError, struct.error,
                  Image.DecompressionBombError)


class ImageUnreadable(GoldgateError):
    """The bytes are not an image Pillow can decode."""


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int
    height: int
    dhash: str
    colors: tuple[int, ...] = ()   # 8x8 RGB box averages, row by row
    # The media type of the format the bytes decoded as (image/png), if Pillow knows it: the format's own, not a
    # variant's (an animated PNG is a PNG, served as image/png; Pillow's get_format_mimetype says image/apng).
    mime: str | None = None


def color_distance(a: ImageFacts, b: ImageFacts) -> float:
    """Mean absolute difference of the two colour thumbnails, per channel value (0 = same colours, 255 = max)."""
    if len(a.colors) != len(b.colors) or not a.colors:
        raise ValueError("colour thumbnails of different sizes")
    return sum(abs(x - y) for x, y in zip(a.colors, b.colors, strict=True)) / len(a.colors)


def inspect_image(data: bytes) -> ImageFacts:
    """Format, size and dHash of an encoded image."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            # Pillow itself only warns up to twice MAX_IMAGE_PIXELS and decodes anyway: check the header first.
            if img.width * img.height > MAX_PIXELS:
                raise ImageUnreadable(f"{img.width}x{img.height} is more than {MAX_PIXELS} pixels")
            img.load()
            return ImageFacts(format=str(img.format or "?"), width=img.width, height=img.height,
                              dhash=dhash(img), colors=thumbnail(img), mime=Image.MIME.get(str(img.format).upper()))
    except UnidentifiedImageError:  # Pillow's message names its in-memory buffer (an address), not the file
        raise ImageUnreadable(f"not a readable image (no image format Pillow knows; it begins {bytes(data[:8])!r})"
                              ) from None
    except _DECODE_ERRORS as exc:
        raise ImageUnreadable(f"not a readable image ({type(exc).__name__}: {exc})") from None


def dhash(img: Image.Image, size: int = HASH_SIZE) -> str:
    """Difference hash: grey, shrink to (size+1) x size, one bit per horizontal gradient sign."""
    grey = img.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
    px = grey.load()
    bits = 0
    for y in range(size):
        for x in range(size):
            bits = (bits << 1) | (1 if px[x, y] > px[x + 1, y] else 0)
    return f"{bits:0{size * size // 4}x}"


def thumbnail(img: Image.Image, size: int = 8) -> tuple[int, ...]:
    """The image's colours in brief: RGB, box-averaged down to size x size (alpha dropped)."""
    small = img.convert("RGB").resize((size, size), Image.Resampling.BOX)
    px = small.load()
    return tuple(v for y in range(size) for x in range(size) for v in px[x, y])


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hashes of different lengths: {len(a)} vs {len(b)}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def preview(data: bytes) -> str | None:
    """A small JPEG of an encoded image as a data: URI, for the report's page to show the render and its reference
    side by side (the page is self-contained, and the result's own URL needs the API's token or expires); None for
    bytes that do not decode. Called only for images inspect_image has read, so within its pixel bound."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=80)
    except (UnidentifiedImageError, *_DECODE_ERRORS):
        return None
    return PREVIEW_PREFIX + base64.b64encode(out.getvalue()).decode("ascii")
