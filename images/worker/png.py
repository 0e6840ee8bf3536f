"""PNG dimensions from the IHDR chunk, with the stdlib (the worker needs no imaging library)."""

from __future__ import annotations

import struct

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class NotAPngError(ValueError):
    """The bytes are not a PNG file."""


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG; raises NotAPngError for anything else."""
    if len(data) < 24 or not data.startswith(_SIGNATURE) or data[12:16] != b"IHDR":
        raise NotAPngError("not a PNG image (bad signature or missing IHDR)")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise NotAPngError("PNG declares a zero dimension")
    return width, height
