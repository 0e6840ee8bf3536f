"""Golden cases that send an input image: `inputs: {image: {file: <name in inputs/>}}` is read and checked when the
case is loaded, uploaded through the public API (POST /api/inputs) before the job is created, and the key the API
answers is what the create sends; the report names the file and its sha256. Also: the "run again" command a golden
run prints repeats the run's --reports-dir."""

from __future__ import annotations

import hashlib
import io
import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from release_support import TOKEN, StandInApi, _handler, render_png, serving, standin_api, write_case
from test_promotion_evidence import Target

from goldgate.release.cases import CaseError, load_case, load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

IMAGE = "local/worker@sha256:" + "a" * 64
WORKFLOW = "wf-i2i"
PARAMETERS = [{"name": "image", "type": "image"}, {"name": "prompt", "type": "string"},
              {"name": "seed", "type": "integer"}]


def png(width: int, height: int, colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class ImageApi(StandInApi):
    """The stand-in job API with the input-image route: POST /api/inputs stores the body under a fresh key, and
    queue/create refuses an image parameter that is not such a key (as the service does)."""

    uploads: dict[str, tuple[bytes, str | None, str | None]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    upload_status: int = 201
    workflows: list[str] = field(default_factory=lambda: [WORKFLOW])

    def render(self, workflow: str, inputs: dict[str, Any]) -> list[bytes]:
        if "image" not in inputs:
            return super().render(workflow, inputs)
        data, _, _ = self.uploads[inputs["image"]]
        width, height = Image.open(io.BytesIO(data)).size   # an img2img render keeps its input's size
        return [render_png(f"{workflow}:{inputs.get('prompt')}:{inputs.get('seed')}:0", width, height)]


def _image_handler(api: ImageApi) -> type:
    class Handler(_handler(api)):  # type: ignore[misc]
        def do_POST(self) -> None:
            if self.path == "/api/inputs":
                if not self._authorized():
                    return None
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if api.upload_status != 201:
                    return self._json(api.upload_status, {"error": {"code": "unsupported_media_type",
                                                                    "message": "send image/png"}})
                key = f"inputs/{hashlib.sha256(body).hexdigest()[:24]}{len(api.uploads):08x}.png"
                api.uploads[key] = (body, self.headers.get("content-type"), self.headers.get("authorization"))
                api.events.append("upload")
                return self._json(201, {"key": key, "content_type": "image/png", "bytes": len(body),
                                        "sha256": hashlib.sha256(body).hexdigest()})
            if self.path == "/api/queue/create":
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                image = json.loads(raw).get("inputs", {}).get("image")
                if image not in api.uploads:
                    return self._json(400, {"error": {"code": "invalid_input", "message": "inputs.image must be the "
                                                      "key of an uploaded image"}})
                api.events.append("create")
                self.rfile = io.BytesIO(raw)   # the stand-in's own create reads the body again
            return super().do_POST()

        def do_GET(self) -> None:
            if self.path == "/api/workflows":
                if self._authorized():
                    self._json(200, {"workflows": [{"id": w, "version": f"{w}@1", "description": "",
                                                    "parameters": PARAMETERS} for w in api.workflows]})
                return None
            return super().do_GET()

    return Handler


@contextmanager
def image_api(api: ImageApi | None = None) -> Iterator[ImageApi]:
    api = api or ImageApi()
    with serving(api, _image_handler(api)):
        yield api


def suite(root: Path, image_value: str = "{file: street.png}") -> Path:
    """One img2img case, its input image (96x64) in inputs/, and its reference."""
    write_case(root / "cases", "street", f"workflow: {WORKFLOW}\ninputs: {{image: {image_value}, prompt: p, seed: 5}}\n"
                                         "expect: {images: 1, width: 96, height: 64}\n")
    (root / "inputs").mkdir(parents=True)
    (root / "inputs" / "street.png").write_bytes(png(96, 64))
    (root / "references").mkdir()
    (root / "references" / "street.png").write_bytes(render_png(f"{WORKFLOW}:p:5:0", 96, 64))
    return root


def run(api: ImageApi, root: Path) -> dict[str, Any]:
    target = SuiteTarget(stack="staging", target="local", image=IMAGE, workflow_version="2026.11.0",
                         thresholds=Thresholds())
    return run_suite(load_cases(root / "cases", inputs_dir=root / "inputs"), ApiAccess(api.url, TOKEN), target,
                     references_dir=root / "references", poll_s=0.01)


# --- the case file -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "said"), [
    ("{file: ../secret.png}", "is outside"),
    ("{file: /etc/hostname}", "is outside"),
    ("{file: nowhere.png}", "no such file"),
    ("{file: notes.png}", "is not a PNG, JPEG or WebP image"),
    ("{file: street.png, width: 3}", "unknown field(s) width"),
])
def test_a_case_naming_an_image_outside_inputs_missing_or_not_an_image_is_refused_naming_case_and_field(
        tmp_path: Path, value: str, said: str) -> None:
    (tmp_path / "secret.png").write_bytes(png(8, 8))   # a real image, but beside inputs/, not in it
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "street.png").write_bytes(png(8, 8))
    (tmp_path / "inputs" / "notes.png").write_text("not an image at all\n")
    write_case(tmp_path / "cases", "street", f"workflow: {WORKFLOW}\ninputs: {{image: {value}, prompt: p}}\n")
    with pytest.raises(CaseError) as caught:
        load_case(tmp_path / "cases" / "street.yaml", tmp_path / "inputs")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'cases' / 'street.yaml'}: inputs.image: "), message
    assert said in message and "\n" not in message, message


def test_a_link_out_of_the_inputs_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.png").write_bytes(png(8, 8))
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "street.png").symlink_to(tmp_path / "elsewhere.png")
    write_case(tmp_path / "cases", "street", f"workflow: {WORKFLOW}\ninputs: {{image: {{file: street.png}}}}\n")
    with pytest.raises(CaseError, match=r"inputs\.image: file 'street.png' leads outside"):
        load_case(tmp_path / "cases" / "street.yaml", tmp_path / "inputs")


def test_another_image_under_the_same_file_name_is_another_case_for_the_gate(tmp_path: Path) -> None:
    root = suite(tmp_path)
    [before] = load_cases(root / "cases", inputs_dir=root / "inputs")
    assert before.input_files["image"].sha256 == hashlib.sha256(png(96, 64)).hexdigest()
    (root / "inputs" / "street.png").write_bytes(png(96, 64, (10, 10, 10)))
    [after] = load_cases(root / "cases", inputs_dir=root / "inputs")
    # The suite digest the gate compares: a golden run with the old picture is no evidence for the new one.
    assert after.sha256 != before.sha256


# --- the run -------------------------------------------------------------------------------------------------------

def test_the_input_image_is_uploaded_before_the_create_and_its_key_is_what_the_create_sends(tmp_path: Path) -> None:
    root = suite(tmp_path)
    with image_api() as api:
        report = run(api, root)
    assert report["passed"] is True, report["failures"]
    assert api.events == ["upload", "create"]
    [(key, (body, content_type, authorization))] = api.uploads.items()
    assert body == (root / "inputs" / "street.png").read_bytes()
    assert content_type == "image/png" and authorization == f"Bearer {TOKEN}"
    [job] = api.jobs.values()
    assert job["inputs"] == {"image": key, "prompt": "p", "seed": 5}


def test_the_report_names_each_input_file_and_its_sha256_never_its_bytes_nor_the_token(tmp_path: Path) -> None:
    root = suite(tmp_path)
    with image_api() as api:
        report = run(api, root)
    [case] = report["cases"]
    data = (root / "inputs" / "street.png").read_bytes()
    [key] = api.uploads
    assert case["input_files"] == {"image": {"file": str(root / "inputs" / "street.png"), "bytes": len(data),
                                             "sha256": hashlib.sha256(data).hexdigest(),
                                             "content_type": "image/png", "key": key}}
    text = json.dumps(report)
    assert TOKEN not in text and data.hex()[:64] not in text
    assert any(c["name"] == "inputs.image" and c["passed"] for c in case["checks"])


def test_an_image_parameter_given_a_plain_string_fails_its_case_without_a_job(tmp_path: Path) -> None:
    root = suite(tmp_path, image_value="street.png")
    with image_api() as api:
        report = run(api, root)
    assert report["passed"] is False
    assert api.jobs == {} and api.uploads == {}
    [failure] = report["failures"]
    assert failure.startswith(f"street: inputs: {root / 'cases' / 'street.yaml'}: inputs.image: "), failure
    assert "{file: <name>}" in failure and "no job was created" in failure, failure


def test_an_upload_the_api_refuses_fails_the_case_naming_the_field_and_file_without_a_job(tmp_path: Path) -> None:
    root = suite(tmp_path)
    with image_api(ImageApi(upload_status=415)) as api:
        report = run(api, root)
    assert report["passed"] is False and api.jobs == {}
    [failure] = report["failures"]
    assert ("inputs.image: POST /api/inputs of street.png answered 415: unsupported_media_type: send image/png"
            in failure), failure


# --- the command a run prints ----------------------------------------------------------------------------------------

def test_the_command_that_makes_a_missing_reference_repeats_the_runs_reports_dir(
        tmp_path: Path, paths: GoldenPaths) -> None:
    [missing, *_] = sorted(paths.references_dir.iterdir())
    missing.unlink()
    with standin_api(StandInApi(image_tag=IMAGE)) as api:
        ran = run_golden(Target(api, {"staging": IMAGE, "prod": IMAGE}), "staging", Ledger(tmp_path / "home"),
                         paths=paths, poll_s=0.01)
    [detail] = [check["detail"] for case in ran.report["cases"] for check in case["checks"]
                if check["name"] == "perceptual_hash" and not check["passed"]]
    # Before, the command left --reports-dir out: typed as printed, its report went to the checkout's reports/.
    assert f"--reports-dir {shlex.quote(str(paths.reports_dir))}`" in detail, detail
    assert ran.path.parent == paths.reports_dir


def test_the_golden_readmes_image_case_is_a_valid_case_of_the_committed_input(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "scripts" / "golden-tests" / "README.md").read_text()
    block = readme.split("A parameter of type `image`", 1)[1].split("\n\n", 2)[1]
    case_file = tmp_path / "img2img.yaml"
    case_file.write_text("\n".join(line[4:] for line in block.splitlines()) + "\n")
    case = load_case(case_file)   # the checkout's scripts/golden-tests/inputs/
    assert case.workflow == "sdxl-img2img" and case.input_files["image"].content_type == "image/png"
    assert (case.expect.width, case.expect.height) == (768, 512)
