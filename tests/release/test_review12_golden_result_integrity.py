"""A golden case checks that the image the API serves is the one the worker stored: the status gives each result's
sha256 (docs/INTERFACES.md, "Public API"), and the service itself checks only an object's size. An object of the same
size rewritten in the bucket, or another job's served under the key, must fail the case, not pass it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api, write_case

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64
KEY = "results/job-x/0.png"


def _run(root: Path, api: StandInApi) -> dict:
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    return run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target,
                     references_dir=root / "references", poll_s=0.01)


def _served(api: StandInApi, served: bytes, described: bytes) -> None:
    """The API serves `served` under KEY while the status describes `described` there (its bytes and sha256)."""
    api.objects[KEY] = served
    api.results_as = [{"key": KEY, "url": f"/api/result/{KEY}", "content_type": "image/png", "bytes": len(described),
                       "sha256": hashlib.sha256(described).hexdigest(), "width": 64, "height": 64}]


def _one_case(tmp_path: Path) -> Path:
    root = golden_suite(tmp_path)
    (root / "cases" / "batch.yaml").unlink()
    write_case(root / "cases", "square", "workflow: wf-a\ninputs: {prompt: p1, seed: 1, width: 64, height: 64}\n"
                                         "expect: {images: 1, width: 64, height: 64, max_hash_distance: 4}\n")
    return root


def test_an_image_other_than_the_one_the_worker_stored_fails_the_case(tmp_path: Path) -> None:
    root = _one_case(tmp_path)
    rendered = render_png("wf-a:p1:1:0", 64, 64)          # what the worker stored: it matches the reference
    rewritten = bytearray(rendered)
    rewritten[-2] ^= 0xFF                                  # same size: the end chunk's checksum, no pixel
    with standin_api(StandInApi(image_tag=IMAGE, workflows=["wf-a"])) as api:   # the one case's workflow
        _served(api, bytes(rewritten), rendered)
        report = _run(root, api)
    assert report["passed"] is False
    (failure,) = report["failures"]
    assert failure.startswith(f"square: image[0].sha256_match: status says sha256 "
                              f"{hashlib.sha256(rendered).hexdigest()[:16]}..., the image served has ")
    assert failure.endswith("...: the API serves another object than the worker stored")


def test_the_image_the_worker_stored_passes(tmp_path: Path) -> None:
    root = _one_case(tmp_path)
    rendered = render_png("wf-a:p1:1:0", 64, 64)
    with standin_api(StandInApi(image_tag=IMAGE, workflows=["wf-a"])) as api:   # the one case's workflow
        _served(api, rendered, rendered)
        report = _run(root, api)
    assert report["passed"] is True, report["failures"]
    (case,) = report["cases"]
    assert {c["name"]: c["passed"] for c in case["checks"]}["image[0].sha256_match"] is True
