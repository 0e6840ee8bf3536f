"""Review 30 (rel): a release engineer walking a week of releases by hand found PROD's pin.json corrupt (a hand
edit). Its refusal says to move it aside and pin the image again with `goldgate rollback --to <ref>`; done so, the
rollback's summary said "... which its host still served (None was pinned by an interrupted change and never
served)": there was no pin, and no interrupted change. And `rollback --to` a release it does not know listed
the recent ones no build in this ledger named (built in another state dir, or by CI) as "- (<ref>)"."""

from __future__ import annotations

from pathlib import Path

import pytest
from prod_status_support import A as PA
from prod_status_support import B as PB
from prod_status_support import promoted
from test_promotion_evidence import B

import goldgate.commands.release as release_commands
from goldgate.release.history import UnknownRelease, resolve
from goldgate.release.ledger import Ledger


def test_a_rollback_that_pins_what_a_pinless_prod_serves_says_it_had_no_pin() -> None:
    # A corrupt pin.json is refused with "move pin.json aside, then `goldgate rollback --to <ref>`": done so, the
    # rollback said "None was pinned by an interrupted change and never served".
    said = release_commands._render_rollback({"stack": "prod", "before": None, "prod_image": B, "served": B,
                                               "pinned_outside_goldgate": False}, [])
    assert said == f"PROD redeployed {B}, which its host still served (it had no pin) (smoke passed)"


def test_a_verified_release_no_build_named_is_listed_by_its_image_alone(tmp_path: Path) -> None:
    # Built in another state dir (or by CI): the ledger has no build entry, so no release id. Listed as "- (<ref>)".
    ledger = Ledger(tmp_path)
    promoted(ledger, PA)
    promoted(ledger, PB, before=PA)
    with pytest.raises(UnknownRelease) as refused:
        resolve(ledger.entries(), "deadbeef1", current=PB)
    assert str(refused.value).endswith(f"Recent ones: {PA}. See `goldgate history`."), refused.value
