"""The project's test policy for missing components: skip here, fail under CI=true (.ci/run installs them, and the
CI machine is Linux, with every operating-system feature the tests use: /proc, named pipes, /dev/full)."""

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


def needs(available: bool, what: str) -> pytest.MarkDecorator:
    """`require` as a mark, for a test or a whole module (`pytestmark = needs(...)`), where a `skipif` mark would
    skip under CI=true too: the test skips where `what` is missing, and fails under CI=true (tests/conftest.py)."""
    if available:
        return pytest.mark.skipif(False, reason=what)  # a mark that changes nothing
    if IN_CI:
        return pytest.mark.ci_missing(what)
    return pytest.mark.skip(reason=f"{what} is not available on this machine")
