"""Fixtures for operations tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ops_fixtures import build_stack_db


@pytest.fixture
def stack_db() -> Callable[..., Path]:
    return build_stack_db
