"""The golden runner against cases that could not fail or would race, references that are damaged, huge or
links, and renders that must not become references: each is a named check or a refusal before any job runs,
never a traceback and never a reference overwritten with a render the run itself failed."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api, write_case

from goldgate.release import golden
from goldgate.release.cases import CaseError, load_case, load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.perceptual import ImageUnreadable, inspect_image
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


def target(case_latency_s: float = 600.0) -> SuiteTarget:
    return SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                       thresholds=Thresholds(golden_case_latency_s=case_latency_s))


def run(api: StandInApi, root: Path, cases: list | None = None, update: bool = False, **kw) -> dict:
    return run_suite(cases if cases is not None else load_cases(root / "cases"), ApiAccess(api.url, TOKEN),
                     kw.pop("suite_target", target()), references_dir=root / "references",
                     update_references=update, poll_s=0.01, **kw)


def png_broken_mid_image() -> bytes:
    """A PNG whose header is fine and whose image data is cut by a chunk of no valid type: Pillow opens it, then
    raises SyntaxError (not OSError) while decoding."""
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, "PNG")
    data = buf.getvalue()
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[start:start + 4])
    body = data[start + 8:start + 8 + length]

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (data[:start] + chunk(b"IDAT", body[:length // 2]) + chunk(b"I\x00\x14D", body[length // 2:])
            + data[start + 12 + length:])


def test_a_case_asking_for_more_time_than_the_stack_allows_is_refused_before_any_job(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    write_case(root / "cases", "square", "workflow: wf-a\ninputs: {prompt: p1, seed: 1, width: 64, height: 64}\n"
                                         "expect: {max_latency_s: 900}\n")
    with standin_api() as api:
        with pytest.raises(CaseError) as err:
            run(api, root, suite_target=target(case_latency_s=600))
        assert api.jobs == {}  # nothing sent, nothing billed
    assert str(err.value) == (f"{root / 'cases' / 'square.yaml'}: expect.max_latency_s: 900 s is more than stack "
                              "staging's golden_case_latency_s (600 s), the most a case may take; lower it to at "
                              "most 600 or raise the stack's limit")


def test_a_case_may_tighten_the_stack_s_limit(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    write_case(root / "cases", "square", "workflow: wf-a\ninputs: {prompt: p1, seed: 1, width: 64, height: 64}\n"
                                         "expect: {max_latency_s: 30}\n")
    with standin_api() as api:
        report = run(api, root)
    assert report["passed"] is True, report["failures"]
    assert {c["id"]: c["max_latency_s"] for c in report["cases"]} == {"batch": 600.0, "square": 30.0}


def test_cases_sharing_a_reference_are_refused_before_any_job_even_when_built_by_hand(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    write_case(root / "cases", "batch", "workflow: wf-b\ninputs: {prompt: p2, seed: 2, width: 48, height: 32}\n"
                                        "expect: {reference: square.png}\n")
    cases = [load_case(root / "cases" / "batch.yaml"), load_case(root / "cases" / "square.yaml")]
    before = (root / "references" / "square.png").read_bytes()
    with standin_api() as api:
        with pytest.raises(CaseError, match=r"expect\.reference square\.png is also the reference of case batch"):
            run(api, root, cases, update=True)
        assert api.jobs == {}
    assert (root / "references" / "square.png").read_bytes() == before


def test_a_render_that_failed_its_checks_does_not_become_the_reference(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    refs = root / "references"
    before = {p.name: p.read_bytes() for p in refs.iterdir()}
    # a stale worker: every job ran on another image than the one the run is bound to
    with standin_api(StandInApi(image_tag="local/worker@sha256:" + "b" * 64,
                                renders=lambda wf, inputs: [render_png("a new model", int(inputs["width"]),
                                                                       int(inputs["height"]))]
                                * int(inputs.get("batch_size", 1)))) as api:
        report = run(api, root, update=True)
    assert report["passed"] is False
    assert {p.name: p.read_bytes() for p in refs.iterdir()} == before
    square = next(c for c in report["cases"] if c["id"] == "square")
    (updated,) = [c for c in square["checks"] if c["name"] == "reference_updated"]
    assert updated == {"name": "reference_updated", "passed": False,
                       "detail": "square.png left as it was: this render failed the checks above"}


def test_a_render_that_passed_its_checks_becomes_the_reference(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    new = render_png("a new model", 64, 64)
    with standin_api(StandInApi(renders=lambda wf, inputs: [new] * int(inputs.get("batch_size", 1)))) as api:
        # A new render CHANGED beyond the cases' limits: written only for the cases the operator names.
        report = run(api, root, update=True, accept_changed=["square", "batch"])
    assert (root / "references" / "square.png").read_bytes() == new
    assert report["references_updated"] is True
    assert not [p.name for p in (root / "references").iterdir() if p.name.endswith(".tmp")]


def test_updating_a_reference_that_is_a_link_replaces_the_link_not_the_file_it_points_to(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    elsewhere = tmp_path / "not-a-reference.txt"
    elsewhere.write_text("keep me\n")
    ref = root / "references" / "square.png"
    ref.unlink()
    ref.symlink_to(elsewhere)
    with standin_api() as api:
        run(api, root, update=True)   # what it points to is no image: left as it was unless named
        assert ref.is_symlink() and elsewhere.read_text() == "keep me\n"
        run(api, root, update=True, accept_changed=["square"])
    assert elsewhere.read_text() == "keep me\n"
    assert not ref.is_symlink() and ref.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_png_broken_mid_image_is_unreadable_not_a_syntax_error() -> None:
    with pytest.raises(ImageUnreadable, match=r"not a readable image \(SyntaxError: broken PNG file"):
        inspect_image(png_broken_mid_image())


def test_a_broken_reference_or_render_fails_its_case_and_the_run_goes_on(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    (root / "references" / "square.png").write_bytes(png_broken_mid_image())

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        if workflow == "wf-b":
            return [png_broken_mid_image()] * 2
        return [render_png("wf-a:p1:1:0", 64, 64)]

    with standin_api(StandInApi(renders=renders)) as api:
        report = run(api, root)
    failures = report["failures"]
    assert any(f.startswith("square: perceptual_hash: reference square.png: not a readable image (SyntaxError")
               for f in failures), failures
    assert any(f.startswith("batch: image[0].decode: not a readable image (SyntaxError") for f in failures), failures


def test_a_reference_larger_than_any_render_is_named_not_read_whole(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = golden_suite(tmp_path)
    monkeypatch.setattr(golden, "_MAX_RESULT_BYTES", 50_000)
    (root / "references" / "square.png").write_bytes(render_png("wf-a:p1:1:0", 64, 64) + b"\0" * 60_000)
    with standin_api() as api:
        report = run(api, root)
    assert "square: perceptual_hash: reference square.png: cannot read it (larger than 50000 bytes)" \
        in report["failures"], report["failures"]


def test_a_worker_error_cannot_steer_the_operators_terminal(tmp_path: Path) -> None:
    error = "\x1b[2J\x1b[31mall good\x1b[0m\rCUDA \u202eerror: out of memory"

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/queue/create":
            return httpx.Response(202, json={"job_id": "job-1", "status": "queued"})
        return httpx.Response(200, json={"job_id": "job-1", "status": "failed", "error": error,
                                         "worker_image_tag": IMAGE})

    case = load_case(golden_suite(tmp_path) / "cases" / "square.yaml")
    with httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(api)) as client:
        result = golden.run_case(client, ApiAccess("http://api.test", TOKEN), case, target(),
                                 references_dir=tmp_path / "references", poll_s=0.01)
    assert result["error"] == "\\x1b[2J\\x1b[31mall good\\x1b[0m CUDA \\u202eerror: out of memory"
    (completed,) = [c for c in result["checks"] if c["name"] == "completed"]
    assert completed["detail"] == f"status failed: {result['error']}"


def test_a_status_listing_more_results_than_expected_fails_the_count_without_fetching_them_all(
        tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    (root / "cases" / "batch.yaml").unlink()
    item = {"key": "results/job-1/0.png", "url": "/api/result/results/job-1/0.png", "content_type": "image/png"}
    with standin_api(StandInApi(results_as=[item] * 500)) as api:
        report = run(api, root)
        fetched = [h for h in api.auth_headers_seen if h]  # create, polls, and each result fetched
    (case,) = report["cases"]
    assert [c["detail"] for c in case["checks"] if c["name"] == "image_count"] == ["500 image(s), expected 1"]
    assert len(case["images"]) == 1 and len(fetched) < 10
