"""Mutation audit of a golden case's input image file (goldgate/release/cases.py input_file): each of the three
formats POST /api/inputs takes is sent with its own Content-Type, and the byte limit is the API's, to the byte."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from release_support import write_case

from goldgate.release.cases import MAX_INPUT_BYTES, CaseError, load_case


def _case(tmp_path: Path, data: bytes, name: str) -> Path:
    (tmp_path / "inputs").mkdir(exist_ok=True)
    (tmp_path / "inputs" / name).write_bytes(data)
    write_case(tmp_path / "cases", "street", f"workflow: wf-i2i\ninputs: {{image: {{file: {name}}}, prompt: p}}\n")
    return tmp_path / "cases" / "street.yaml"


@pytest.mark.parametrize(("kind", "name", "content_type"), [("PNG", "a.png", "image/png"),
                                                              ("JPEG", "a.jpg", "image/jpeg"),
                                                              ("WEBP", "a.webp", "image/webp")])
def test_each_format_the_api_takes_is_sent_with_its_own_content_type(tmp_path: Path, kind: str, name: str,
                                                                      content_type: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), "orange").save(out, kind)
    case = load_case(_case(tmp_path, out.getvalue(), name), tmp_path / "inputs")
    assert case.input_files["image"].content_type == content_type


def test_an_image_file_of_exactly_the_apis_limit_is_taken_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "orange").save(out, "PNG")
    at_limit = out.getvalue() + b"\0" * (20 * 1024 * 1024 - len(out.getvalue()))
    assert len(at_limit) == MAX_INPUT_BYTES == 20 * 1024 * 1024
    assert load_case(_case(tmp_path, at_limit, "big.png"), tmp_path / "inputs").input_files["image"].bytes == len(at_limit)
    with pytest.raises(CaseError, match="larger than 20971520 bytes, the most POST /api/inputs takes"):
        load_case(_case(tmp_path, at_limit + b"\0", "big.png"), tmp_path / "inputs")


@pytest.mark.parametrize(("name", "said"), [("'sub\\\\street.png'", "is outside"),
                                            ("'  '", "an image is given as {file: <name>}")])
def test_a_file_named_with_a_backslash_or_only_blanks_is_refused_naming_the_field(tmp_path: Path, name: str,
                                                                                   said: str) -> None:
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "sub\\street.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # on POSIX, one file's name
    (tmp_path / "inputs" / "  ").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_case(tmp_path / "cases", "street", f"workflow: wf-i2i\ninputs: {{image: {{file: {name}}}, prompt: p}}\n")
    with pytest.raises(CaseError) as refused:
        load_case(tmp_path / "cases" / "street.yaml", tmp_path / "inputs")
    assert str(refused.value).startswith(f"{tmp_path / 'cases' / 'street.yaml'}: inputs.image: ")
    assert said in str(refused.value), str(refused.value)
