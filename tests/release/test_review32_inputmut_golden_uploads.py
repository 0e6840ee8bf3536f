"""Mutation audit of the golden runner's upload of a case's input image (goldgate/release/golden.py): what the API
answers POST /api/inputs is checked before any job is created with it, a lost answer is sent again, and a file
given to a parameter that takes no image, or changed since the cases were read, fails its case without a job."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from release_support import TOKEN, serving
from test_review32_inputrel_golden_inputs import ImageApi, _image_handler, run, suite

from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.spec import Thresholds


@dataclass
class ScriptedUploads(ImageApi):
    """ImageApi whose next POST /api/inputs answers are scripted: (status, JSON body), or None for a stored upload."""

    replies: list[tuple[int, dict[str, Any]] | None] = field(default_factory=list)


@contextmanager
def scripted(api: ScriptedUploads) -> Iterator[ScriptedUploads]:
    class Handler(_image_handler(api)):  # type: ignore[misc]
        def do_POST(self) -> None:
            reply = api.replies.pop(0) if self.path == "/api/inputs" and api.replies else None
            if reply is None:
                return super().do_POST()
            self.rfile.read(int(self.headers.get("content-length", 0)))
            api.events.append(f"upload {reply[0]}")
            return self._json(*reply)

    with serving(api, Handler):
        yield api


def _only_failure(report: dict[str, Any]) -> str:
    assert report["passed"] is False
    [failure] = report["failures"]
    return failure


def test_an_upload_answered_503_is_sent_again_and_the_case_runs(tmp_path: Path) -> None:
    root = suite(tmp_path)
    busy = (503, {"error": {"code": "store_unavailable", "message": "retry later"}})
    with scripted(ScriptedUploads(replies=[busy])) as api:
        report = run(api, root)
    assert report["passed"] is True, report["failures"]
    assert api.events == ["upload 503", "upload", "create"]


def test_an_upload_answered_200_is_no_stored_input_and_no_job_is_created(tmp_path: Path) -> None:
    root = suite(tmp_path)
    data = (root / "inputs" / "street.png").read_bytes()
    cached = (200, {"key": "inputs/" + "a" * 32 + ".png", "sha256": hashlib.sha256(data).hexdigest()})
    with scripted(ScriptedUploads(replies=[cached])) as api:
        failure = _only_failure(run(api, root))
    assert "inputs.image: POST /api/inputs of street.png answered 200" in failure and "no job was created" in failure
    assert api.jobs == {} and "create" not in api.events


def test_an_upload_answered_without_an_input_key_creates_no_job_with_what_it_gave(tmp_path: Path) -> None:
    root = suite(tmp_path)
    data = (root / "inputs" / "street.png").read_bytes()
    odd = (201, {"key": "inputs/" + "a" * 32 + ".png/../../results/x/0.png", "sha256": hashlib.sha256(data).hexdigest()})
    with scripted(ScriptedUploads(replies=[odd])) as api:
        failure = _only_failure(run(api, root))
    assert "answered 201 without a key of the form inputs/<32 hex>.<png|jpg|webp>" in failure, failure
    assert api.jobs == {} and "create" not in api.events


def test_an_upload_stored_with_another_sha256_than_the_files_creates_no_job(tmp_path: Path) -> None:
    root = suite(tmp_path)
    other = (201, {"key": "inputs/" + "b" * 32 + ".png", "sha256": "0" * 64})
    with scripted(ScriptedUploads(replies=[other])) as api:
        failure = _only_failure(run(api, root))
    assert "it stored other bytes than were sent; no job was created" in failure, failure
    assert api.jobs == {} and "create" not in api.events


def test_a_file_given_to_a_parameter_that_takes_no_image_fails_the_case_without_an_upload(tmp_path: Path) -> None:
    root = suite(tmp_path)
    case = root / "cases" / "street.yaml"
    case.write_text(case.read_text().replace("prompt: p", "prompt: {file: street.png}"))
    with scripted(ScriptedUploads()) as api:
        failure = _only_failure(run(api, root))
    assert "inputs.prompt: a file is for an image parameter" in failure and "of type string" in failure, failure
    assert api.jobs == {} and api.uploads == {}


def test_an_input_file_grown_since_the_cases_were_read_is_not_uploaded(tmp_path: Path) -> None:
    root = suite(tmp_path)
    cases = load_cases(root / "cases", inputs_dir=root / "inputs")
    with (root / "inputs" / "street.png").open("ab") as grown:
        grown.write(b"\0" * 16)
    target = SuiteTarget(stack="staging", target="local", image="local/worker@sha256:" + "a" * 64,
                         workflow_version="2026.11.0", thresholds=Thresholds())
    with scripted(ScriptedUploads()) as api:
        report = run_suite(cases, ApiAccess(api.url, TOKEN), target, references_dir=root / "references", poll_s=0.01)
    failure = _only_failure(report)
    assert "changed since the cases were read" in failure, failure
    assert api.uploads == {} and api.jobs == {}
