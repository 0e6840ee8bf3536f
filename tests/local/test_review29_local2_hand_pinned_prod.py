"""Review 29 (local2): `goldgate status prod` of a running PROD whose pin.json was edited by hand to another image
said, on its `pin` line, that "a deploy, promote or rollback moved the pin and ended before the host took it", and
told the operator to "run the interrupted `goldgate promote` ... or `goldgate rollback` again", though nothing was
interrupted. The release ledger tells the two apart: a pin no promotion or rollback there moved is now said to be
pinned outside goldgate, with the ways out that work (the rollback that keeps the release it serves, or the gate for
the pinned one); a promotion cut short after it moved the pin keeps its advice."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import B, promoted

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.ledger import Ledger


def _prod_serving_a_promoted_release(home: Path) -> tuple[LocalPlatform, str]:
    image = image_store.build_local_image(WORKER_SOURCE, home)
    StackDir(home, "prod").pin(image, reason="test: promoted")
    promoted(Ledger(home), image)
    platform = LocalPlatform(home)
    platform.up("prod")
    return platform, image


def _status_lines(home: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["status", "prod", "--home", str(home)]) == 0
    return {line.split()[0]: line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}


def test_a_pin_edited_by_hand_is_said_to_be_pinned_outside_goldgate(home: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    platform, served = _prod_serving_a_promoted_release(home)
    try:
        StackDir(home, "prod").pin(B, reason="edited by hand")
        lines = _status_lines(home, capsys)
    finally:
        platform.down("prod")
    pin = lines["pin"]
    assert pin.startswith(f"pin                    pinned to {B}, but its host serves {served}: no promotion or "
                          "rollback in the release ledger moved the pin there (it was pinned outside goldgate: "
                          f"{StackDir(home, 'prod').pin_file} edited by hand, or the ledger lost its entries)"), pin
    # Before: "... moved the pin and ended before the host took it ...; run the interrupted `goldgate promote` ..."
    assert "interrupted" not in pin and "ended before the host took it" not in pin, pin
    assert f"runs {B}, which no promotion verified on prod;" in pin, pin
    assert f"`goldgate rollback --to {served}` puts the pin back on the release it serves (and smokes it)" in pin, pin
    assert (f"to serve {B}, take it through the gate: `goldgate deploy staging --image {B}`, `goldgate golden "
            f"staging`, then `goldgate promote --image {B}`") in pin, pin
    assert "UNVERIFIED" not in lines, lines   # it serves a verified release: nothing else to say of it


def test_a_promotion_cut_short_after_it_moved_the_pin_is_still_said_so(home: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    platform, served = _prod_serving_a_promoted_release(home)
    try:
        Ledger(home).append("promotion", phase="intent", stack="prod", target="local", image=B, before=served,
                            trigger="test")
        StackDir(home, "prod").pin(B, reason="deploy")   # the promotion's deploy moved the pin, then was killed
        pin = _status_lines(home, capsys)["pin"]
    finally:
        platform.down("prod")
    assert "moved the pin and ended before the host took it" in pin, pin
    assert "run the interrupted `goldgate promote`" in pin and "pinned outside goldgate" not in pin, pin
