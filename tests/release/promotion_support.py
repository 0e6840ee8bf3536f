"""A ledger of verified releases on the in-process target of test_promotion_evidence.py (two stacks behind one
stand-in job API), for tests that start from "PROD runs a verified release" and change it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import A, Target, _released, _staging_passes

import goldgate.commands.release as release_commands
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths

T = TypeVar("T", bound=Target)


@dataclass
class Released(Generic[T]):
    home: Path
    ledger: Ledger
    target: T
    api: StandInApi


@contextmanager
def released(tmp_path: Path, paths: GoldenPaths, *images: str, staging_passed: str | None = None,
             make: Callable[[StandInApi], T] = lambda api: Target(api, {})) -> Iterator[Released[T]]:
    """Each of `images` qualified on STAGING and promoted to PROD in turn, then, with `staging_passed`, that image
    deployed to STAGING and its golden run passed (a promotion of it is next). The target is `make(api)` (no stack
    pinned: Target(api, {})), its state home tmp_path/home; the stand-in API runs until the block ends."""
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = make(api)
        _released(target, ledger, home, paths, *images)
        if staging_passed is not None:
            _staging_passes(target, ledger, paths, staging_passed)
        yield Released(home, ledger, target, api)


@contextmanager
def commands_on_stand_in(monkeypatch: pytest.MonkeyPatch, image: str = A) -> Iterator[Target]:
    """STAGING and PROD both on `image` behind one stand-in job API (the target's `.api`), and the CLI's release
    commands (`golden`, `promote`, ...) run against them while the block lasts."""
    with standin_api(StandInApi(image_tag=image)) as api:
        stacks = Target(api, {"staging": image, "prod": image})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: stacks)
        yield stacks
