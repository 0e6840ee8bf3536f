"""Local stacks for tests: each test module gets its own state home and stack file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stackfiles import stacks_file

from goldgate.local.platform import LocalPlatform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPlatform]:
    home = tmp_path_factory.mktemp("home")
    p = LocalPlatform(home, stacks_file(home, staging={"webhook_retry_delay_s": 0.5}))
    yield p
    for stack in ("staging", "prod"):
        p.down(stack)
