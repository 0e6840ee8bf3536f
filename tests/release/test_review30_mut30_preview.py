"""Review 30 mutation audit (mut30): the previews a golden run's HTML page shows of a failed render and its
reference. A large render is shrunk to 256 px on its longest side (the page embeds it; a 2048 px render whole would
make the page megabytes per case), a render with transparency (RGBA, as a ComfyUI SaveImage of an alpha workflow
writes) still gets one, and bytes that do not decode to the end give none rather than ending the run."""

from __future__ import annotations

import base64
import io

from PIL import Image

from goldgate.release.perceptual import PREVIEW_PREFIX, preview


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 128) if mode == "RGBA" else (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _shown(uri: str | None) -> Image.Image:
    assert uri is not None and uri.startswith(PREVIEW_PREFIX), uri
    return Image.open(io.BytesIO(base64.b64decode(uri[len(PREVIEW_PREFIX):])))


def test_a_large_render_is_shown_small() -> None:
    assert _shown(preview(_png((2048, 1024)))).size == (256, 128)


def test_a_render_with_transparency_is_shown() -> None:
    assert _shown(preview(_png((300, 300), "RGBA"))).size == (256, 256)


def test_bytes_cut_short_give_no_preview() -> None:
    whole = _png((512, 512))
    assert preview(whole[: len(whole) // 2]) is None
    assert preview(b"not an image") is None
