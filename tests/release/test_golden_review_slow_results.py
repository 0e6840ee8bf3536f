"""A stack that serves its result images a few bytes at a time: httpx's timeout is per read, so without a bound of
its own the golden run would wait for such an image for as long as the server keeps sending, and write no report.
The case fails instead, naming the slow result."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from release_support import TOKEN, golden_suite, render_png
from serving import JsonHandler, serving

from goldgate.release import golden
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64
PIECES = 24  # a result image arrives in this many pieces, `pause_s` apart


@contextmanager
def trickling_api(pause_s: float) -> Iterator[str]:
    """The job API's client routes; every job completes at once, and its result image trickles."""
    jobs: dict[str, dict[str, Any]] = {}

    class Handler(JsonHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            job_id = f"job-{len(jobs) + 1}"
            jobs[job_id] = body
            self._json(202, {"job_id": job_id, "status": "queued"})

        def do_GET(self) -> None:
            if self.path == "/api/workflows":  # the suite's own (release_support.golden_suite): every one has a case
                return self._json(200, {"workflows": [{"id": w, "version": "v1", "parameters": []}
                                                      for w in ("wf-a", "wf-b")]})
            if self.path.startswith("/api/status/"):
                job_id = self.path.removeprefix("/api/status/")
                inputs = jobs[job_id]["inputs"]
                results = [{"key": f"results/{job_id}/{i}.png", "url": f"/api/result/results/{job_id}/{i}.png",
                            "content_type": "image/png"} for i in range(int(inputs.get("batch_size", 1)))]
                return self._json(200, {"job_id": job_id, "status": "completed", "results": results,
                                        "worker_image_tag": IMAGE, "workflow_version": "v1"})
            job_id, index = self.path.removeprefix("/api/result/results/").split("/")
            body = jobs[job_id]
            inputs = body["inputs"]
            data = render_png(f"{body['workflow_id']}:{inputs.get('prompt')}:{inputs.get('seed')}:"
                              f"{index.removesuffix('.png')}", int(inputs.get("width", 64)),
                              int(inputs.get("height", 64)))
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            step = -(-len(data) // PIECES)
            try:
                for start in range(0, len(data), step):
                    self.wfile.write(data[start:start + step])
                    self.wfile.flush()
                    time.sleep(pause_s)
            except OSError:  # the client gave up on it
                return

    with serving(Handler) as url:
        yield url


def run(url: str, root: Path, smoke_only: bool = False) -> dict[str, Any]:
    return run_suite(load_cases(root / "cases", smoke_only=smoke_only), ApiAccess(url, TOKEN),
                     SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="v1",
                                 thresholds=Thresholds()),
                     references_dir=root / "references", poll_s=0.01)


def test_a_result_image_that_trickles_fails_its_case_with_the_reason(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(golden, "RESULT_FETCH_S", 0.5, raising=False)  # well under the 24 x 0.25 s it takes
    root = golden_suite(tmp_path)
    with trickling_api(pause_s=0.25) as url:
        report = run(url, root, smoke_only=True)
    assert report["passed"] is False
    reasons = [f for f in report["failures"] if f.startswith("square: image[0].fetch: ")]
    assert reasons and "still arriving after 0.5 s" in reasons[0] and "too slowly" in reasons[0], report["failures"]


def test_a_result_that_arrives_in_pieces_within_the_bound_is_checked_as_usual(tmp_path: Path) -> None:
    root = golden_suite(tmp_path)
    with trickling_api(pause_s=0.0) as url:
        report = run(url, root)
    assert report["passed"] is True, report["failures"]
