"""A golden case naming its input image with a NUL character is refused naming the case and field (found by the
review24 fuzz sweep: Path.resolve raised ValueError "embedded null byte" out of load_cases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.cases import CaseError, input_file


@pytest.mark.parametrize("name", ["a\x00.png", "\x00", "dir/\x00/x.png"])
def test_a_file_name_with_a_nul_is_a_case_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(CaseError) as caught:
        input_file({"file": name}, "cases/x.yaml: inputs.image", tmp_path)
    assert str(caught.value).startswith("cases/x.yaml: inputs.image: file ")
    assert "NUL character" in str(caught.value)
