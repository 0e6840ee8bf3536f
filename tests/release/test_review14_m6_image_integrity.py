"""Review 14 (m6): renders a golden run passed although they were wrong: a batch made up with one render listed
twice, bytes of another format than the case expects under the expected media type, and a render at another size
than its reference (dHash and the colour thumbnail shrink both to 8x8, so size alone never showed)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api, write_case

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


def _run(api: StandInApi, root: Path) -> dict:
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    return run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target,
                     references_dir=root / "references", poll_s=0.01)


def _failed(report: dict, case_id: str) -> dict[str, str]:
    case = next(c for c in report["cases"] if c["id"] == case_id)
    return {c["name"]: c["detail"] for c in case["checks"] if not c["passed"]}


def test_a_batch_made_up_with_one_render_listed_twice_fails(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = int(inputs["width"]), int(inputs["height"])
        first = render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:0", w, h)
        return [first] * int(inputs.get("batch_size", 1))   # the worker uploaded its first image twice

    with standin_api(StandInApi(renders=renders)) as api:
        report = _run(api, root)
    assert report["passed"] is False
    failed = _failed(report, "batch")
    assert list(failed) == ["image[1].distinct"], failed
    assert "same bytes as image[0]" in failed["image[1].distinct"]
    assert _failed(report, "square") == {}


def test_a_healthy_batch_of_distinct_renders_still_passes(tmp_path: Path) -> None:
    with standin_api() as api:
        report = _run(api, golden_suite(tmp_path))
    assert report["passed"] is True, report["failures"]


def _jpeg(png: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_jpeg_bytes_served_as_the_png_the_case_expects_fail(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = int(inputs["width"]), int(inputs["height"])
        return [_jpeg(render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:{i}", w, h))
                for i in range(int(inputs.get("batch_size", 1)))]

    with standin_api(StandInApi(renders=renders)) as api:   # served as image/png
        report = _run(api, root)
    assert report["passed"] is False
    failed = _failed(report, "square")
    assert list(failed) == ["image[0].format"], failed
    assert "JPEG" in failed["image[0].format"] and "expected image/png" in failed["image[0].format"]


def test_a_render_at_another_size_than_its_reference_fails_when_the_case_names_no_size(tmp_path: Path) -> None:
    root = tmp_path / "golden"
    write_case(root / "cases", "nosize", "workflow: wf-a\ninputs: {prompt: p1, seed: 1}\n"
                                         "expect: {images: 1, max_hash_distance: 4}\n")
    (root / "references").mkdir()
    (root / "references" / "nosize.png").write_bytes(render_png("picture", 64, 64))

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        # the same picture at twice the size: a workflow whose width/height input no longer reaches the latent
        buf = io.BytesIO()
        Image.open(io.BytesIO(render_png("picture", 64, 64))).resize((128, 128), Image.Resampling.NEAREST) \
            .save(buf, "PNG")
        return [buf.getvalue()]

    with standin_api(StandInApi(renders=renders)) as api:
        report = _run(api, root)
    assert report["passed"] is False
    failed = _failed(report, "nosize")
    assert list(failed) == ["reference_dimensions"], failed
    assert failed["reference_dimensions"].startswith("128x128, the reference nosize.png is 64x64")
