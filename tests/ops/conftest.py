"""Fixtures for operations tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db, scan_tree_once


@pytest.fixture
def stack_db() -> Callable[..., Path]:
    return build_stack_db


@pytest.fixture
def scan_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checklist runs (local and cloud, in this process) get the polling scan of service/ from
    `scan_tree_once`: the real scan's result for the tree's current bytes, scanned once per process instead of
    once per run. A test that calls `scan_tree` itself holds the real function (it imported the name) and
    scans every time."""
    from goldgate.ops import polling_scan

    monkeypatch.setattr(polling_scan, "scan_tree", scan_tree_once)
