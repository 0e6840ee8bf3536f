"""A golden case's input image with a side under 8 pixels is refused when the case is loaded, naming the case, the
file and its size: POST /api/inputs refuses it (400 image_too_small), so the run would fail mid-way instead."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from release_support import write_case

from goldgate.release.cases import CaseError, load_case


def _case(tmp_path: Path, size: tuple[int, int]) -> Path:
    out = io.BytesIO()
    Image.new("RGB", size, "orange").save(out, "PNG")
    (tmp_path / "inputs").mkdir(exist_ok=True)
    (tmp_path / "inputs" / "tiny.png").write_bytes(out.getvalue())
    write_case(tmp_path / "cases", "street", "workflow: wf-i2i\ninputs: {image: {file: tiny.png}, prompt: p}\n")
    return tmp_path / "cases" / "street.yaml"


@pytest.mark.parametrize("size", [(4, 4), (7, 64), (64, 7), (1, 1)])
def test_an_image_with_a_side_under_8_pixels_is_refused_naming_the_case_and_its_size(tmp_path: Path,
                                                                                     size: tuple[int, int]) -> None:
    with pytest.raises(CaseError) as refused:
        load_case(_case(tmp_path, size), tmp_path / "inputs")
    said = str(refused.value)
    assert said.startswith(f"{tmp_path / 'cases' / 'street.yaml'}: inputs.image: "), said
    assert f"is {size[0]}x{size[1]}, under the 8-pixel minimum" in said, said


def test_an_image_of_8_by_8_pixels_is_taken(tmp_path: Path) -> None:
    case = load_case(_case(tmp_path, (8, 8)), tmp_path / "inputs")
    assert case.input_files["image"].content_type == "image/png"
