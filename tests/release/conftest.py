"""Fixtures shared by the release tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import golden_suite

from goldgate.release.verification import GoldenPaths


@pytest.fixture
def paths(tmp_path: Path) -> GoldenPaths:
    """A golden suite of its own (two cases and their references) under the test's tmp_path."""
    suite = golden_suite(tmp_path / "golden")
    return GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references", reports_dir=suite / "reports")
