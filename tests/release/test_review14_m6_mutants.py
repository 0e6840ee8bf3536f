"""Review 14 (m6): behaviour of the golden runner, its cases and report, the build and the deployers that no test
held (each test names the mutant it was written against)."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest
from release_support import TOKEN, StandInApi, golden_suite, render_png, standin_api, write_case
from serving import JsonHandler

from goldgate.release import golden
from goldgate.release.build import (
    PushFailed,
    ReleaseIdentity,
    build_docker,
    manifest_sha256,
    parse_push_stream,
)
from goldgate.release.cases import CaseError, load_cases
from goldgate.release.deployers.cloud import CloudDeployer, CloudDeployFailed, wait_for_rollout
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.perceptual import MAX_PIXELS, ImageUnreadable, hamming, inspect_image
from goldgate.release.report import ReportError, build_report, read_report
from goldgate.runpod.resources import ReleaseHistory
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64


def _run(api: StandInApi, root: Path, **kw) -> dict:
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    return run_suite(load_cases(root / "cases"), ApiAccess(api.url, TOKEN), target,
                     references_dir=root / "references", poll_s=0.01, **kw)


def _failed(report: dict, case_id: str) -> dict[str, str]:
    case = next(c for c in report["cases"] if c["id"] == case_id)
    return {c["name"]: c["detail"] for c in case["checks"] if not c["passed"]}


def test_more_images_than_the_case_expects_fail_it(tmp_path: Path) -> None:
    """Mutant: image_count `len(results) == exp.images` -> `>=` (a batch of 3 for a case of 2 passed)."""
    root = golden_suite(tmp_path)

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = int(inputs["width"]), int(inputs["height"])
        n = int(inputs.get("batch_size", 1)) + 1   # one image more than asked for
        return [render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:{i}", w, h) for i in range(n)]

    with standin_api(StandInApi(renders=renders)) as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert _failed(report, "batch") == {"image_count": "3 image(s), expected 2"}
    assert _failed(report, "square") == {"image_count": "2 image(s), expected 1"}


def test_every_image_of_a_batch_is_fetched_and_checked_not_only_the_first(tmp_path: Path) -> None:
    """Mutant: `enumerate(results[:exp.images])` -> `results[:1]` (a broken second image of a batch passed)."""
    root = golden_suite(tmp_path)

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        w, h = int(inputs["width"]), int(inputs["height"])
        good = [render_png(f"{workflow}:{inputs['prompt']}:{inputs['seed']}:{i}", w, h)
                for i in range(int(inputs.get("batch_size", 1)))]
        return good[:1] + [b"\x89PNG\r\n\x1a\n" + b"\0" * 2000 for _ in good[1:]]   # a truncated second PNG

    with standin_api(StandInApi(renders=renders)) as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert list(_failed(report, "batch")) == ["image[1].decode"]
    assert [i["bytes"] for i in next(c for c in report["cases"] if c["id"] == "batch")["images"]] == [
        len(render_png("wf-b:p2:2:0", 48, 32)), 2008]


def _one_case(root: Path, expect: str, width: int = 64, height: int = 64) -> Path:
    write_case(root / "cases", "one", f"workflow: wf-a\ninputs: {{prompt: p1, seed: 1, width: {width}, height: {height}}}\n"
                                      f"expect: {{{expect}}}\n")
    (root / "references").mkdir(exist_ok=True)
    (root / "references" / "one.png").write_bytes(render_png("wf-a:p1:1:0", width, height))
    return root


def test_an_image_larger_than_the_case_allows_fails_it(tmp_path: Path) -> None:
    """Mutant: the size check loses its upper bound (`exp.min_bytes <= len(data)` only)."""
    size = len(render_png("wf-a:p1:1:0", 64, 64))
    root = _one_case(tmp_path, f"images: 1, min_bytes: 10, max_bytes: {size - 1}")
    with standin_api() as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert _failed(report, "one") == {"image[0].size": f"{size} bytes (allowed 10..{size - 1})"}


def test_an_image_whose_size_differs_from_what_the_status_says_fails(tmp_path: Path) -> None:
    """Mutant: the `bytes_match` check dropped (a status without a sha256 then vouched for any bytes)."""
    root = _one_case(tmp_path, "images: 1")
    data = render_png("wf-a:p1:1:0", 64, 64)
    api = StandInApi(results_as=[{"key": "kept/one.png", "url": "/api/result/kept/one.png", "bytes": len(data) + 7,
                                  "content_type": "image/png"}])
    api.objects["kept/one.png"] = data
    with standin_api(api) as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert _failed(report, "one") == {"image[0].bytes_match": f"status says {len(data) + 7}, got {len(data)}"}


def test_an_image_of_the_right_width_but_another_height_fails(tmp_path: Path) -> None:
    """Mutant: the dimensions check compares the width only."""
    root = _one_case(tmp_path, "images: 1, width: 64, height: 64")
    (root / "references" / "one.png").write_bytes(render_png("wf-a:p1:1:0", 64, 48))

    def renders(workflow: str, inputs: dict) -> list[bytes]:
        return [render_png("wf-a:p1:1:0", 64, 48)]   # the workflow lost its height input

    with standin_api(StandInApi(renders=renders)) as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert _failed(report, "one") == {"image[0].dimensions": "64x48 (expected 64x64)"}


def test_a_render_one_dhash_bit_past_the_cases_limit_fails_and_one_at_it_passes(tmp_path: Path) -> None:
    """Mutant: `distance <= max_hash_distance` loosened by one bit (the limit a case sets is the most it allows)."""
    reference = render_png("another picture", 64, 64)
    distance = hamming(inspect_image(render_png("wf-a:p1:1:0", 64, 64)).dhash, inspect_image(reference).dhash)
    assert 1 <= distance <= 63
    verdicts = {}
    for limit in (distance - 1, distance):
        root = _one_case(tmp_path / str(limit), f"images: 1, max_hash_distance: {limit}, max_color_distance: 254")
        (root / "references" / "one.png").write_bytes(reference)
        with standin_api() as api:
            verdicts[limit] = _failed(_run(api, root), "one")
    assert verdicts[distance] == {}
    assert list(verdicts[distance - 1]) == ["perceptual_hash"]  # its detail goes on to say what to do (review 30)
    assert verdicts[distance - 1]["perceptual_hash"].startswith(f"dHash distance {distance} to one.png "
                                                                f"(max {distance - 1})")


def test_a_result_on_another_origin_is_fetched_without_the_bearer_token(tmp_path: Path) -> None:
    """Mutant: `_fetch` opens every URL with the API client (its Authorization header goes to any host a status
    names)."""
    data = render_png("wf-a:p1:1:0", 64, 64)
    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("authorization"))
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{other.server_address[1]}/bucket/one.png"
        root = _one_case(tmp_path, "images: 1")
        with standin_api(StandInApi(results_as=[{"url": url, "bytes": len(data)}], workflows=["wf-a"])) as api:
            report = _run(api, root)
    finally:
        other.shutdown()
        other.server_close()
        thread.join(5)
    assert report["passed"] is True, report["failures"]    # the image was fetched from there and checked
    assert seen == [None]
    assert TOKEN not in json.dumps(report)


def test_a_result_past_the_runners_download_cap_is_refused_not_held(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant: `_fetch` drops its running-total cap (a result of any size was read whole into memory). The cap is
    lowered here so that the test need not send 200 MB."""
    monkeypatch.setattr(golden, "_MAX_RESULT_BYTES", 300)   # the render is 377 bytes
    root = _one_case(tmp_path, "images: 1")
    with standin_api() as api:
        report = _run(api, root)
    assert report["passed"] is False
    assert _failed(report, "one") == {"image[0].fetch": "result is larger than 300 bytes"}


class _EndsAs(JsonHandler):
    """A stand-in API whose every job ends in the status named by the server's `final` attribute."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._json(202, {"job_id": "job-1", "status": "queued"})

    def do_GET(self) -> None:
        self._json(200, {"job_id": "job-1", "status": self.server.final, "worker_image_tag": IMAGE,  # type: ignore[attr-defined]
                         "error": f"the job was {self.server.final}"})  # type: ignore[attr-defined]


@pytest.mark.parametrize("final", ["cancelled", "timed_out"])
def test_a_job_that_ends_cancelled_or_timed_out_ends_its_case_with_that_status(tmp_path: Path, final: str) -> None:
    """Mutant: TERMINAL without `cancelled` / `timed_out` (such a job was polled on to the case's limit and reported
    as still running)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EndsAs)
    server.final = final  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = _one_case(tmp_path, "images: 1, max_latency_s: 3")
        target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                             thresholds=Thresholds())
        report = run_suite(load_cases(root / "cases"), ApiAccess(f"http://127.0.0.1:{server.server_address[1]}",
                                                                 TOKEN), target,
                           references_dir=root / "references", poll_s=0.01)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    case = report["cases"][0]
    assert report["passed"] is False
    assert case["status"] == final
    assert _failed(report, "one") == {"completed": f"status {final}: the job was {final}"}


def test_a_status_that_writes_the_sha256_in_capitals_still_vouches_for_the_image(tmp_path: Path) -> None:
    """Mutant: the sha256 comparison made case-sensitive (a status spelling its hex in capitals failed a good
    image as "another object than the worker stored")."""
    root = _one_case(tmp_path, "images: 1")
    data = render_png("wf-a:p1:1:0", 64, 64)
    api = StandInApi(results_as=[{"key": "kept/one.png", "url": "/api/result/kept/one.png", "bytes": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest().upper()}], workflows=["wf-a"])
    api.objects["kept/one.png"] = data
    with standin_api(api) as api:
        report = _run(api, root)
    assert report["passed"] is True, report["failures"]
    names = [c["name"] for c in report["cases"][0]["checks"]]
    assert "image[0].sha256_match" in names


def test_the_digest_of_a_push_is_the_one_its_last_aux_line_gives() -> None:
    """Mutant: `parse_push_stream` keeps the first `aux` digest (the stream's last line is the registry's final
    word on what it holds)."""
    first, last = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    lines = [{"status": "Pushing", "id": "layer"}, {"aux": {"Tag": "t", "Digest": first, "Size": 1}},
             {"status": "t: digest: ... size: 1"}, {"aux": {"Tag": "t", "Digest": last, "Size": 1}}]
    assert parse_push_stream(lines) == last


def test_a_registry_that_cannot_say_whether_the_tag_exists_stops_the_build_before_anything_is_built(
        tmp_path: Path) -> None:
    """Mutant: every registry APIError taken for "the tag does not exist" (a registry answering 401/500 to the
    question led to a build and a push over a tag that may name other content)."""
    ctx = tmp_path / "worker"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    built: list[str] = []

    def registry_data(_ref: str) -> None:
        raise docker.errors.APIError("500 Server Error", explanation="unauthorized: authentication required")

    def build(**_kw: object) -> None:
        built.append("built")
        raise AssertionError("nothing may be built without knowing what the tag names")

    engine = SimpleNamespace(api=SimpleNamespace(), images=SimpleNamespace(get_registry_data=registry_data,
                                                                           build=build))
    with pytest.raises(PushFailed, match="unauthorized: authentication required.*refusing to push"):
        build_docker(engine, ctx, "127.0.0.1:5000/goldgate-worker",
                     ReleaseIdentity("2026.11.0", "c" * 40, manifest_sha256(ctx)))
    assert built == []


def test_the_mean_latency_limit_fails_a_report_just_past_it_and_passes_one_at_it() -> None:
    """Mutant: the mean-latency comparison loosened (`mean > 2 * golden_mean_latency_s`)."""
    results = [{"id": f"c{i}", "latency_s": s, "worker_image_tag": IMAGE, "workflow_version": "wf@1",
                "checks": [{"name": "completed", "passed": True, "detail": ""}], "passed": True}
               for i, s in enumerate((3.0, 5.0))]

    def report(limit: float) -> dict:
        target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                             thresholds=Thresholds(golden_mean_latency_s=limit))
        return build_report(target, "http://127.0.0.1:1", results, started="s", finished="f", wall_time_s=5.0,
                            suite="full", image_after=IMAGE)

    assert report(4.0)["passed"] is True
    past = report(3.9)
    assert past["passed"] is False
    assert past["failures"] == ["mean latency 4.0 s exceeds golden_mean_latency_s 3.9 s"]


class _Control:
    """A RunPod control plane as `wait_for_rollout` reads it: the endpoint's image and the release list's rollout
    summary, one answer per poll (the last one repeats)."""

    def __init__(self, answers: list[tuple[str, dict]]) -> None:
        self.answers, self.polls = answers, 0

    def get_endpoint(self, _endpoint_id: str) -> SimpleNamespace:
        self.polls += 1
        return SimpleNamespace(image=self._now()[0])

    def list_releases(self, _endpoint_id: str) -> ReleaseHistory:
        return ReleaseHistory.from_wire({"endpointVersion": 4, "rollout": self._now()[1], "releases": [
            {"id": "rel-4", "version": 4, "source": "MANUAL", "createdAt": "", "workerCount": 1, "diff": []}]})

    def _now(self) -> tuple[str, dict]:
        return self.answers[min(self.polls, len(self.answers)) - 1]


def _rollout(on: int, total: int, in_progress: bool) -> dict:
    return {"inProgress": in_progress, "workersOnLatest": on, "workersTotal": total,
            "percentOnLatest": 100 * on // total if total else 0}


OLD, NEW = "r.example/w@sha256:" + "a" * 64, "r.example/w@sha256:" + "b" * 64


@pytest.mark.parametrize(("name", "before"), [
    # the endpoint still names the old image: its release is the old one, on every worker (mutant: image ignored)
    ("old image", [(OLD, _rollout(2, 2, False))]),
    # RunPod says a worker still runs an older version, though its rounded percentage says 100 (mutant: inProgress
    # ignored)
    ("in progress", [(NEW, {"inProgress": True, "workersOnLatest": 199, "workersTotal": 200, "percentOnLatest": 100})]),
    # 2 of 3 workers, 66%: not every worker (mutant: a majority taken for done)
    ("two of three", [(NEW, _rollout(2, 3, False))]),
])
def test_a_rollout_is_complete_only_when_the_endpoint_names_the_image_on_every_worker(name: str,
                                                                                      before: list) -> None:
    control = _Control(before * 3 + [(NEW, _rollout(3, 3, False))])
    done = wait_for_rollout(control, "ep1", NEW, timeout_s=60, poll_s=0.001, progress=lambda _m: None)
    assert control.polls == 4, name
    assert done["percent_on_latest"] == 100 and done["workers_total"] == 3


def test_an_idle_endpoint_on_the_new_image_counts_as_rolled_out() -> None:
    """Mutant: `or r.workers_total == 0` dropped (a min-0 endpoint with no worker would wait out the timeout)."""
    control = _Control([(NEW, _rollout(0, 0, False))])
    done = wait_for_rollout(control, "ep1", NEW, timeout_s=5, poll_s=0.001, progress=lambda _m: None)
    assert control.polls == 1 and done["workers_total"] == 0


def test_a_rollout_that_never_reaches_the_image_fails_at_its_timeout_naming_both_images() -> None:
    control = _Control([(OLD, _rollout(2, 2, False))])
    with pytest.raises(CloudDeployFailed, match=f"endpoint image {OLD}\\); the config pins {NEW}"):
        wait_for_rollout(control, "ep1", NEW, timeout_s=0.05, poll_s=0.001, progress=lambda _m: None)


def _report(results: list[dict], image: str | None = IMAGE) -> dict:
    target = SuiteTarget(stack="staging", target="local", image=image, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    return build_report(target, "http://127.0.0.1:1", results, started="s", finished="f", wall_time_s=1.0,
                        suite="full", image_after=image)


def _case(case_id: str, tag: str | None) -> dict:
    return {"id": case_id, "latency_s": 1.0, "worker_image_tag": tag, "workflow_version": "wf@1",
            "checks": [{"name": "completed", "passed": True, "detail": ""}], "passed": True}


def test_a_run_on_a_stack_with_no_pinned_image_cannot_pass() -> None:
    """Mutant: build_report no longer fails a run whose stack pins no image (the worker_image check is skipped then,
    so nothing else fails it: the report would vouch for no image at all)."""
    report = _report([_case("a", None)], image=None)
    assert report["passed"] is False
    assert report["failures"] == ["stack staging has no pinned image; deploy one first"]


def test_a_report_over_jobs_on_two_images_names_both() -> None:
    """Mutant: `worker_image_tag` names the first tag seen (a run whose jobs ran on two images read as one)."""
    other = "local/worker@sha256:" + "b" * 64
    assert _report([_case("a", IMAGE), _case("b", other)])["worker_image_tag"] == sorted([IMAGE, other])
    assert _report([_case("a", IMAGE), _case("b", IMAGE)])["worker_image_tag"] == IMAGE


def test_the_stacks_own_token_variable_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant: `_secret` reads GOLDGATE_API_TOKEN before GOLDGATE_API_TOKEN_<STACK> (a shell holding both would call
    PROD with STAGING's token)."""
    monkeypatch.setenv("GOLDGATE_API_TOKEN", "shared-token")
    monkeypatch.setenv("GOLDGATE_API_TOKEN_PROD_EU", "prod-eu-token")
    stack = SimpleNamespace(name="prod-eu", get_config=lambda _key: SimpleNamespace(value="config-token"))
    assert CloudDeployer()._secret(stack, "GOLDGATE_API_TOKEN", "goldgate:apiToken") == "prod-eu-token"
    monkeypatch.delenv("GOLDGATE_API_TOKEN_PROD_EU")
    assert CloudDeployer()._secret(stack, "GOLDGATE_API_TOKEN", "goldgate:apiToken") == "shared-token"


@pytest.mark.parametrize("value", ["0", "-30"])
def test_a_rollout_timeout_of_zero_or_less_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Mutant: GOLDGATE_ROLLOUT_TIMEOUT_S only has to be finite (0 gave up on every rollout at its first poll)."""
    monkeypatch.setenv("GOLDGATE_ROLLOUT_TIMEOUT_S", value)
    with pytest.raises(CloudDeployFailed, match="is not a number of seconds greater than 0"):
        CloudDeployer.from_env()


def test_a_json_object_that_is_not_a_golden_report_is_refused(tmp_path: Path) -> None:
    """Mutant: read_report drops its schema check (any JSON object, `{"passed": true}`, read as a report)."""
    path = tmp_path / "latest.json"
    path.write_text('{"passed": true, "stack": "staging"}\n')
    with pytest.raises(ReportError, match="is not a golden report \\(schema goldgate.golden-report.v1 expected\\)"):
        read_report(path)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")   # what Pillow says at open
def test_an_image_past_the_pixel_cap_is_refused_from_its_header_before_any_decoding() -> None:
    """Mutant: inspect_image drops its own pixel check (Pillow only warns up to twice MAX_IMAGE_PIXELS and then
    decodes the whole image into memory)."""
    width, height = 8000, 8800   # 70.4 M pixels: past the cap, short of twice it

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    with pytest.raises(ImageUnreadable, match=f"^{width}x{height} is more than {MAX_PIXELS} pixels$"):
        inspect_image(header + chunk(b"IEND", b""))


def test_a_case_may_ask_for_the_stacks_latency_limit_but_not_a_second_more(tmp_path: Path) -> None:
    """Mutant: check_latency_limits lets a case exceed the stack's golden_case_latency_s by up to a second."""
    for asked, refused in ((600, False), (600.5, True)):
        cases = tmp_path / str(asked)
        write_case(cases, "one", f"workflow: wf-a\ninputs: {{prompt: p}}\nexpect: {{max_latency_s: {asked}}}\n")
        if refused:
            with pytest.raises(CaseError, match="expect.max_latency_s: 600.5 s is more than the stack's "
                                                "golden_case_latency_s \\(600 s\\)"):
                load_cases(cases, stack_latency_s=600.0)
        else:
            assert load_cases(cases, stack_latency_s=600.0)[0].expect.max_latency_s == 600.0
