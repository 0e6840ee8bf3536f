"""The project's test policy for missing components: skip here, fail under CI=true (.ci/run installs them)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, what: str) -> None:
    """Skip when `what` is missing here; under CI=true a missing component fails the test instead."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI (.ci/run installs it) but is missing")
    pytest.skip(f"{what} is not available on this machine")
