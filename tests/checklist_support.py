"""A local release to check, and `goldgate checklist --json` read back, for the checklist tests that run the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform


@contextmanager
def released_locally(tmp_path: Path) -> Iterator[tuple[Path, Path, LocalPlatform]]:
    """`goldgate release` on a local platform of the test's own: yields (home, reports, platform), home and reports
    under tmp_path; STAGING and PROD are brought down when the block ends."""
    home, reports = tmp_path / "home", tmp_path / "reports"
    platform = LocalPlatform(home)
    try:
        assert main(["release", "--home", str(home), "--reports-dir", str(reports)]) == 0
        yield home, reports, platform
    finally:
        for stack in ("staging", "prod"):
            platform.down(stack)


def checklist_checks(capsys: pytest.CaptureFixture[str], stack: str, home: Path,
                     reports: Path) -> dict[str, dict[str, Any]]:
    """`goldgate checklist <stack> --json`'s checks by id (what was printed before it is dropped)."""
    capsys.readouterr()
    main(["checklist", stack, "--home", str(home), "--reports-dir", str(reports), "--json"])
    return {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
