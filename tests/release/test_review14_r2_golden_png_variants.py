"""Review 14 (r2): the golden format check must not fail a render that is a PNG. An animated PNG (ComfyUI's
SaveAnimatedPNG writes one; the worker stores any .png it is given, as image/png) is a PNG: every PNG decoder
shows its first frame, and image/png is the media type it is served with. Pillow names it `image/apng`."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64   # the image the stand-in API says it ran


def _animated(png: bytes) -> bytes:
    """`png` as the first frame of a two-frame APNG (the second frame another picture)."""
    first = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    first.save(buf, "PNG", save_all=True, append_images=[ImageOps.invert(first)], duration=100, loop=0)
    return buf.getvalue()


def test_an_animated_png_served_as_image_png_passes_the_format_check(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = int(inputs["width"]), int(inputs["height"])
        return [_animated(render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:{i}", w, h))
                for i in range(int(inputs.get("batch_size", 1)))]

    sample = _animated(render_png("x", 16, 16))
    assert sample.startswith(b"\x89PNG\r\n\x1a\n") and b"acTL" in sample   # an APNG, as SaveAnimatedPNG writes

    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    with standin_api(StandInApi(renders=renders)) as api:   # served as image/png, as the worker stores it
        report = run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target,
                           references_dir=root / "references", poll_s=0.01)
    failed = {f"{c['id']}:{k['name']}": k["detail"] for c in report["cases"] for k in c["checks"]
              if not k["passed"]}
    assert failed == {}, failed
    assert report["passed"] is True
