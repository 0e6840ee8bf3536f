"""Shared test setup. `tests/` is on sys.path (pytest's rootdir conftest), so test modules import
`ci_policy.require` (or the mark `ci_policy.needs`) for components a machine may lack."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ci_missing(what): `what` is missing on a CI machine (ci_policy.needs)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    mark = item.get_closest_marker("ci_missing")
    if mark is not None:  # ci_policy.needs under CI=true: a missing component fails the test, as `require` does
        pytest.fail(f"{mark.args[0]} is required under CI (the CI machine has it) but is missing")
