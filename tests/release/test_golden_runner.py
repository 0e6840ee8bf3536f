"""The golden runner against a stand-in of the API's client routes: checks, references, report."""

from __future__ import annotations

import gzip
import io
import json
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api, write_case

from goldgate.errors import GoldgateError
from goldgate.release import golden
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.perceptual import ImageUnreadable, hamming, inspect_image
from goldgate.release.report import load_report, percentile, write_report
from goldgate.release.report_html import render
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


@pytest.fixture
def golden_dir(tmp_path: Path) -> Path:
    return golden_suite(tmp_path)


def target(image: str | None = IMAGE, **thr: float) -> SuiteTarget:
    return SuiteTarget(stack="staging", target="local", image=image, workflow_version="2026.11.0",
                       thresholds=Thresholds(**thr))


def run(api: StandInApi, golden_dir: Path, **kw):
    cases = load_cases(golden_dir / "cases", smoke_only=kw.pop("smoke_only", False))
    return run_suite(cases, ApiAccess(api.url, TOKEN), kw.pop("target", target()),
                     references_dir=golden_dir / "references", poll_s=0.01, image_now=kw.pop("image_now", None), **kw)


def test_a_healthy_stack_passes_every_check_and_the_report_is_bound_to_its_image(golden_dir: Path) -> None:
    with standin_api() as api:
        report = run(api, golden_dir)
    assert report["passed"] is True, report["failures"]
    assert report["image"] == IMAGE and report["image_digest"] == "sha256:" + "a" * 64
    assert report["worker_image_tag"] == IMAGE
    assert [c["id"] for c in report["cases"]] == ["batch", "square"]
    names = {ch["name"] for ch in report["cases"][1]["checks"]}
    assert {"completed", "latency", "worker_image", "image_count", "image[0].content_type", "image[0].size",
            "image[0].dimensions", "perceptual_hash"} <= names
    assert report["latency_s"]["count"] == 2
    assert report["sum_latency_s"] == pytest.approx(sum(c["latency_s"] for c in report["cases"]), abs=0.01)
    assert report["cases"][1]["images"][0]["hash_distance"] == 0


def test_a_failed_job_fails_its_case_with_the_reason(golden_dir: Path) -> None:
    with standin_api(StandInApi(fail_workflows={"wf-b"})) as api:
        report = run(api, golden_dir)
    assert report["passed"] is False
    assert any("batch: completed: status failed: model missing" in f for f in report["failures"])


def test_a_different_render_is_caught_by_the_perceptual_hash(golden_dir: Path) -> None:
    (golden_dir / "references" / "square.png").write_bytes(render_png("something else entirely", 64, 64))
    with standin_api() as api:
        report = run(api, golden_dir)
    square = next(c for c in report["cases"] if c["id"] == "square")
    failed = [c for c in square["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["perceptual_hash"]
    assert "dHash distance" in failed[0]["detail"]


def test_wrong_dimensions_and_content_type_are_each_named(golden_dir: Path) -> None:
    def renders(workflow: str, inputs: dict) -> list[bytes]:
        return [render_png("x", 50, 50)] * int(inputs.get("batch_size", 1))

    with standin_api(StandInApi(renders=renders, content_type="image/jpeg")) as api:
        report = run(api, golden_dir)
    failed = {c["name"] for case in report["cases"] for c in case["checks"] if not c["passed"]}
    assert {"image[0].dimensions", "image[0].content_type"} <= failed


def test_a_missing_reference_fails_and_says_how_to_create_it(golden_dir: Path) -> None:
    (golden_dir / "references" / "batch.png").unlink()
    with standin_api() as api:
        report = run(api, golden_dir)
    assert any("--update-references" in f for f in report["failures"])


def test_update_references_writes_the_first_image_of_each_case(golden_dir: Path) -> None:
    for p in (golden_dir / "references").iterdir():
        p.unlink()
    with standin_api() as api:
        report = run(api, golden_dir, update_references=True)
    assert report["passed"] is True and report["references_updated"] is True
    assert inspect_image((golden_dir / "references" / "batch.png").read_bytes()).width == 48


def test_a_job_on_another_image_than_the_stack_pins_fails(golden_dir: Path) -> None:
    with standin_api(StandInApi(image_tag="local/worker@sha256:" + "b" * 64)) as api:
        report = run(api, golden_dir)
    assert any("worker_image: job ran on local/worker@sha256:bbbb" in f for f in report["failures"])


def test_an_image_change_during_the_run_voids_the_report(golden_dir: Path) -> None:
    with standin_api() as api:
        report = run(api, golden_dir, image_now=lambda: "local/worker@sha256:" + "c" * 64)
    assert report["passed"] is False
    assert any("changed during the run" in f for f in report["failures"])


def test_mean_latency_above_the_threshold_fails_the_report(golden_dir: Path) -> None:
    with standin_api(StandInApi(polls_before_done=3)) as api:
        report = run(api, golden_dir, target=target(golden_mean_latency_s=0.000001))
    assert any("exceeds golden_mean_latency_s" in f for f in report["failures"])


def test_a_rejected_submission_is_a_failed_case_not_a_crash(tmp_path: Path) -> None:
    write_case(tmp_path / "cases", "bad", "workflow: wf-a\ninputs: {seed: 1}\n")
    with standin_api() as api:
        report = run(api, tmp_path)
    assert report["passed"] is False
    assert "400" in report["cases"][0]["error"] and "inputs.prompt is required" in report["cases"][0]["error"]


@pytest.mark.parametrize("results", [5, True, 2.5])
def test_a_completed_status_whose_results_are_not_a_list_fails_its_case_not_the_run(golden_dir: Path,
                                                                                     results: object) -> None:
    with standin_api(StandInApi(results_as=results)) as api:
        report = run(api, golden_dir)
    assert report["passed"] is False
    assert all(any("image_count: results is not a list" in f for f in report["failures"] if f.startswith(c["id"]))
               for c in report["cases"])


def test_the_token_is_sent_to_our_api_and_an_unreachable_api_fails_cleanly(golden_dir: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with standin_api() as api:
        run(api, golden_dir, smoke_only=True)
        assert set(api.auth_headers_seen) == {f"Bearer {TOKEN}"}
    monkeypatch.setattr(golden, "RETRY_BACKOFF_S", 0.01)
    cases = load_cases(golden_dir / "cases", smoke_only=True)
    report = run_suite(cases, ApiAccess("http://127.0.0.1:9", TOKEN), target(), poll_s=0.01,
                       references_dir=golden_dir / "references")
    error = report["cases"][0]["error"]
    assert report["passed"] is False and "ConnectError" in error and "4 attempt(s)" in error


def test_reports_are_written_with_a_dated_copy_and_read_back(golden_dir: Path) -> None:
    with standin_api() as api:
        report = run(api, golden_dir)
    dated = write_report(report, golden_dir / "reports")
    assert dated.name.endswith("-staging.json")
    assert load_report(golden_dir / "reports" / "latest.json") == json.loads(dated.read_text())
    smoke = dict(report, suite="smoke")
    write_report(smoke, golden_dir / "reports", latest=False)
    assert load_report(golden_dir / "reports" / "latest.json")["suite"] == "full"


def test_the_html_view_is_self_contained_and_escapes_values(golden_dir: Path) -> None:
    with standin_api() as api:
        report = run(api, golden_dir)
    report["cases"][0]["id"] = "<script>alert(1)</script>"
    html = render(report)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<svg" in html and "<rect" in html
    assert "src=" not in html and "href=" not in html and "@import" not in html


def test_percentiles_are_nearest_rank() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == 5.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_perceptual_hash_is_stable_and_separates_different_pictures() -> None:
    a = inspect_image(render_png("one", 96, 96))
    assert hamming(a.dhash, inspect_image(render_png("one", 96, 96)).dhash) == 0
    assert hamming(a.dhash, inspect_image(render_png("two", 96, 96)).dhash) > 10
    with pytest.raises(ImageUnreadable):
        inspect_image(b"not an image at all")
    with pytest.raises(ImageUnreadable):
        inspect_image(render_png("one")[:60])


def _recolour(data: bytes, how: str) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    r, g, b = img.split()
    out = {"grey": ImageOps.grayscale(img).convert("RGB"), "bgr": Image.merge("RGB", (b, g, r)),
           "dark": img.point(lambda v: v // 4)}[how]
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("how", ["grey", "bgr", "dark"])
def test_a_render_with_the_right_shapes_but_wrong_colours_fails(golden_dir: Path, how: str) -> None:
    # dHash sees only the grey gradients: a lost colour channel, swapped channels or a crushed exposure keep it.
    def renders(workflow: str, inputs: dict) -> list[bytes]:
        return [_recolour(render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:0", 64, 64), how)]

    with standin_api(StandInApi(renders=renders, workflows=["wf-a"])) as api:   # the smoke case's workflow only
        report = run(api, golden_dir, smoke_only=True)
    [square] = report["cases"]
    assert square["images"][0]["hash_distance"] <= 4
    assert [c["name"] for c in square["checks"] if not c["passed"]] == ["color"]
    assert any("square: color: mean colour difference" in f for f in report["failures"])


def test_an_identical_render_in_another_encoding_passes_the_colour_check(golden_dir: Path) -> None:
    def renders(workflow: str, inputs: dict) -> list[bytes]:
        img = Image.open(io.BytesIO(render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:0", 64, 64)))
        buf = io.BytesIO()
        img.convert("RGBA").save(buf, "PNG", compress_level=0)  # same pixels, alpha channel, no compression
        return [buf.getvalue()]

    with standin_api(StandInApi(renders=renders, workflows=["wf-a"])) as api:   # the smoke case's workflow only
        report = run(api, golden_dir, smoke_only=True)
    assert report["passed"] is True, report["failures"]
    assert report["cases"][0]["images"][0]["color_distance"] == 0


def test_a_status_answer_too_large_to_be_one_fails_its_case_without_being_held(tmp_path: Path) -> None:
    write_case(tmp_path / "cases", "a", "workflow: wf-a\ninputs: {prompt: p1}\n")
    with standin_api(StandInApi(status_padding=8_000_000)) as api:
        report = run(api, tmp_path)
    case = report["cases"][0]
    assert not report["passed"] and not case["passed"]
    assert "status/job-1" in case["error"] and "larger than" in case["error"]


def test_an_api_trickling_its_answer_is_given_up_on_at_the_cases_latency_limit(tmp_path: Path) -> None:
    # httpx's timeout is per read: a server sending a byte now and then would hold the run for ever.
    write_case(tmp_path / "cases", "a", "workflow: wf-a\ninputs: {prompt: p1}\nexpect: {max_latency_s: 0.5}\n")
    with standin_api(StandInApi(trickle_s=0.05)) as api:
        report = run(api, tmp_path)
        case = report["cases"][0]
        assert not case["passed"] and "latency limit" in case["error"]
    assert api.trickles_finished == 0  # the runner hung up instead of reading the answer to its end


def test_a_compressed_api_answer_is_read_as_the_json_it_holds(tmp_path: Path) -> None:
    # Cloudflare compresses the Worker's answers for clients that accept it, as httpx does by default.
    from goldgate.release.golden import bounded_answer

    body = gzip.compress(json.dumps({"job_id": "j1", "status": "queued"}).encode())
    transport = httpx.MockTransport(lambda request: httpx.Response(
        202, headers={"content-type": "application/json", "content-encoding": "gzip"}, content=body))
    with httpx.Client(base_url="http://api.test", transport=transport) as client:
        resp = bounded_answer(client, "POST", "/api/queue/create", time.monotonic() + 30, 30, json={})
    assert resp.status_code == 202 and resp.json() == {"job_id": "j1", "status": "queued"}


def test_a_whole_answer_that_lands_just_past_the_limit_is_read_not_called_still_answering() -> None:
    # On a slow machine a poll's 500 may arrive a moment after the deadline: it is that answer, not a trickle.
    from goldgate.release.golden import bounded_answer

    transport = httpx.MockTransport(lambda request: httpx.Response(
        500, headers={"content-type": "application/json"}, content=b'{"error": {"code": "internal"}}'))
    with httpx.Client(base_url="http://api.test", transport=transport) as client:
        resp = bounded_answer(client, "GET", "/api/status/j1", time.monotonic() - 0.01, 1)
    assert resp.status_code == 500 and resp.json() == {"error": {"code": "internal"}}


def test_a_whole_answer_in_several_chunks_just_past_the_limit_is_read_too() -> None:
    # Cloudflare sends streamed and compressed answers chunked: a few chunks in one write are one answer.
    from goldgate.release.golden import bounded_answer

    transport = httpx.MockTransport(lambda request: httpx.Response(
        500, headers={"content-type": "application/json"}, content=iter([b'{"error": ', b'{"code": "internal"}}'])))
    with httpx.Client(base_url="http://api.test", transport=transport) as client:
        resp = bounded_answer(client, "GET", "/api/status/j1", time.monotonic() - 0.01, 1)
    assert resp.status_code == 500 and resp.json() == {"error": {"code": "internal"}}


@pytest.mark.parametrize("concurrency", [0, -3, 257])
def test_a_concurrency_outside_one_to_256_is_refused_before_any_case_runs(golden_dir: Path, concurrency: int) -> None:
    # The CLI refuses these; a caller of the library must not get a silently different run either.
    with standin_api() as api:
        with pytest.raises(GoldgateError, match="concurrency"):
            run(api, golden_dir, concurrency=concurrency)
        assert api.jobs == {}
