"""Local stacks for tests: each test module gets its own state home and stack file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stackfiles import stacks_file
from stuck_support import own_home

from goldgate.local.platform import LocalPlatform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    home = tmp_path_factory.mktemp("home")
    p = LocalPlatform(home, stacks_file(home, staging={"webhook_retry_delay_s": 0.5}))
    yield p
    for stack in ("staging", "prod"):
        p.down(stack)


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    """A platform of the test's own over the shipped stacks as they are (the module's `platform` shares one, with a
    short webhook retry delay): its home is tmp_path/home; STAGING is brought down afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    p = LocalPlatform(home, stacks_file(home))
    yield p
    p.down("staging")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A state home of the test's own; every process that names it (hosts, workers) is gone afterwards."""
    with own_home(tmp_path) as made:
        yield made
