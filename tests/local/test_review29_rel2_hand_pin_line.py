"""Review 29 (rel2): `goldgate status prod` of a running PROD whose pin.json was edited by hand to an earlier release
verified there: its `pin` line offered only the gate (a golden run on STAGING, then `promote --image`) to serve it;
`goldgate rollback --to <it>`, the way to pin an earlier verified release, is offered now (and no longer refused as
"nothing to roll back": test_review29_rel2_rollback_off_a_hand_pin.py)."""

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


def test_a_hand_pin_on_an_earlier_verified_release_offers_the_rollback_to_it(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(home)
    promoted(ledger, B)
    verified = ledger.entries()[-1].seq
    served = image_store.build_local_image(WORKER_SOURCE, home)
    promoted(ledger, served, before=B)
    StackDir(home, "prod").pin(served, reason="test: promoted")
    platform = LocalPlatform(home)
    platform.up("prod")
    try:
        StackDir(home, "prod").pin(B, reason="edited by hand")
        capsys.readouterr()
        assert main(["status", "prod", "--home", str(home)]) == 0
        out = capsys.readouterr().out
    finally:
        platform.down("prod")
    [pin] = [line.strip() for line in out.splitlines() if line.startswith("  pin ")]
    assert "pinned outside goldgate" in pin and f"a release verified there before (ledger #{verified})" in pin, pin
    assert pin.endswith(f"`goldgate rollback --to {served}` puts the pin back on the release it serves (and smokes "
                        f"it); to serve {B}, `goldgate rollback --to {B}` deploys it (and smokes it)"), pin
    assert "take it through the gate" not in pin, pin
