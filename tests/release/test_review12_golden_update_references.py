"""`goldgate golden <stack> --update-references` rewrites every case's reference (a team adding one case for a new
workflow runs it over the whole suite, as the missing-reference failure advises). Once written, each render is compared
with itself, so the run must say, per case, how far the reference it replaced was from the new render: which references
really moved, and need a look before they are committed, and which only changed bytes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps
from release_support import TOKEN, golden_suite, render_png, standin_api, write_case

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


def _inverted(path: Path) -> None:
    with Image.open(path) as img:
        ImageOps.invert(img.convert("RGB")).save(path)


def test_update_references_says_which_references_moved_and_by_how_much(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    write_case(root / "cases", "wide", "workflow: wf-c\ninputs: {prompt: p3, seed: 3, width: 96, height: 32}\n")
    refs = root / "references"
    (refs / "wide.png").write_bytes(render_png("wf-c:p3:3:0", 96, 32))   # what the stack renders now
    _inverted(refs / "square.png")                                       # a render that changed a lot
    (refs / "batch.png").unlink()                                        # a case without a reference yet
    said: list[str] = []
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    with standin_api() as api:
        api.image_tag = IMAGE
        report = run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target, references_dir=refs,
                           update_references=True, poll_s=0.01, progress=said.append,
                           accept_changed=["square"])   # looked at: a reference CHANGED is written only when named
    # IMAGE is no build of this checkout, so each line ends saying the render is another image's (review 30)
    other = "; a render of staging's image, which is not this checkout's build (the warning above)"
    updated = {c["id"]: next(x["detail"] for x in c["checks"] if x["name"] == "reference_updated").removesuffix(other)
               for c in report["cases"]}
    assert updated["batch"] == "wrote batch.png (a new reference: there was none)"
    assert updated["wide"] == ("wrote wide.png (the one it replaces is dHash distance 0 (max 8), mean colour "
                               "difference 0 (max 24) from this render: within the case's limits)")
    assert updated["square"].startswith("wrote square.png (the one it replaces is dHash distance ")
    assert updated["square"].endswith(" from this render: CHANGED beyond the case's limits; check it by eye "
                                      "(accepted by --accept-changed))")
    square = next(c for c in report["cases"] if c["id"] == "square")
    moved = square["images"][0]["replaced_reference"]
    assert moved["hash_distance"] > 4 and moved["color_distance"] > 24
    # The operator watching the run sees it too, not only whoever opens the report.
    assert any(line.startswith("square: pass in ") and line.endswith(f"; reference: {updated['square']}{other}")
               for line in said), said
