"""A golden case's input image is checked when the cases are read as POST /api/inputs checks it (service.inputs):
an image the API would refuse (cut short, animated, over the default pixel limit) fails the case file naming the
case and field, before any job is sent, rather than as a 400 in the middle of a golden run; and a case giving an
image parameter a plain string is told to put a file in the inputs directory the run reads, not the checkout's."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from release_support import write_case
from test_review32_inputrel_golden_inputs import image_api, run, suite

from goldgate.release.cases import CaseError, load_case


def _png(size: tuple[int, int] = (24, 16), frames: int = 1) -> bytes:
    pictures = [Image.new("RGB", size, (60 * n % 256, 90, 20)) for n in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "PNG", save_all=frames > 1, append_images=pictures[1:])
    return out.getvalue()


def _refused(tmp_path: Path, data: bytes) -> str:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "street.png").write_bytes(data)
    write_case(tmp_path / "cases", "street", "workflow: wf-i2i\ninputs: {image: {file: street.png}, prompt: p}\n")
    with pytest.raises(CaseError) as refused:
        load_case(tmp_path / "cases" / "street.yaml", tmp_path / "inputs")
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'cases' / 'street.yaml'}: inputs.image: "), message
    assert "\n" not in message and str(tmp_path / "inputs" / "street.png") in message, message
    return message


def test_a_case_image_cut_short_before_its_image_data_is_refused_when_the_cases_are_read(tmp_path: Path) -> None:
    whole = _png()
    message = _refused(tmp_path, whole[:whole.index(b"IDAT") - 4])
    assert "would be refused by POST /api/inputs" in message and "cut short" in message, message


def test_an_animated_case_image_is_refused_when_the_cases_are_read(tmp_path: Path) -> None:
    assert "animated" in _refused(tmp_path, _png(frames=3))


def test_a_case_image_over_the_apis_default_pixel_limit_is_refused_and_one_at_it_is_taken(tmp_path: Path) -> None:
    message = _refused(tmp_path, _png((4097, 4096)))
    assert "4097x4096" in message and "16781312 pixels, more than the 16777216" in message, message
    (tmp_path / "inputs" / "street.png").write_bytes(_png((4096, 4096)))
    case = load_case(tmp_path / "cases" / "street.yaml", tmp_path / "inputs")
    assert case.input_files["image"].content_type == "image/png"


def test_an_image_parameter_given_a_string_is_told_the_inputs_directory_the_run_reads(tmp_path: Path) -> None:
    root = suite(tmp_path, image_value="street.png")
    with image_api() as api:
        report = run(api, root)
    [failure] = report["failures"]
    assert f"a PNG, JPEG or WebP file in {root / 'inputs'}/" in failure, failure
    assert "scripts/golden-tests/inputs" not in failure and api.jobs == {}
