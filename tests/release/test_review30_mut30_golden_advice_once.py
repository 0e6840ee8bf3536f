"""Review 30 mutation audit (mut30): a render unlike its reference in size, picture and colour fails three
comparisons, and the advice (look at both, the command that replaces the reference) is said once, on the first of
them, not repeated on each failure line."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from test_review30_wfa_golden_reference_advice import _golden, checkouts_build  # noqa: F401 -- the fixture

from goldgate.release.verification import GoldenPaths


def test_the_advice_is_said_once_for_a_case_that_fails_every_comparison(
        capsys: pytest.CaptureFixture, tmp_path: Path, paths: GoldenPaths, checkouts_build) -> None:  # noqa: F811
    reference = paths.references_dir / "square.png"
    with Image.open(reference) as img:
        width, height = img.size
    other = Image.new("RGB", (width * 2, height), (250, 250, 250))
    other.paste((5, 5, 5), (0, 0, width, height))   # a different picture as well as a different size
    other.save(reference)
    code, out, err = _golden(capsys, tmp_path, paths)
    assert code == 1, (out, err)
    failures = [line for line in out.splitlines() if "failure: square:" in line]
    assert len(failures) >= 2, out
    assert len([line for line in failures if "look at this render" in line]) == 1, failures
