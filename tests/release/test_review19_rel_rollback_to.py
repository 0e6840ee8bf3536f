"""Review 19 (rel): `rollback --to repo@sha256:<first 12 hex>`, as `goldgate history` shows an image, names the release
of that repository: another repository's release whose digest starts alike is not what the operator copied."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.history import UnknownRelease, resolve
from goldgate.release.ledger import Ledger

PREFIX = "abcdef123456"
SMALL = "registry.example/acme/worker@sha256:" + PREFIX + "1" * 52
LARGE = "registry.example/acme/worker-xl@sha256:" + PREFIX + "2" * 52


def _verified(home: Path, *images: str) -> Ledger:
    ledger = Ledger(home, key=None)
    for image in images:
        ledger.append("promotion", phase="outcome", stack="prod", target="cloud", image=image, prod_image=image,
                      outcome="promoted", trigger="user:t")
    return ledger


def test_the_short_form_history_shows_names_the_release_of_its_own_repository(tmp_path: Path) -> None:
    entries = _verified(tmp_path / "home", SMALL, LARGE).entries()
    assert resolve(entries, f"registry.example/acme/worker@sha256:{PREFIX}").image == SMALL
    assert resolve(entries, f"registry.example/acme/worker-xl@sha256:{PREFIX}").image == LARGE


def test_a_short_form_of_a_repository_no_release_came_from_names_none(tmp_path: Path) -> None:
    entries = _verified(tmp_path / "home", SMALL).entries()
    with pytest.raises(UnknownRelease, match="is not a verified release"):
        resolve(entries, f"registry.example/other/worker@sha256:{PREFIX}")
