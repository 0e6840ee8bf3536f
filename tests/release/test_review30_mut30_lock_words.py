"""Review 30 mutation audit (mut30): a promotion's gate refused while a `goldgate promote --check` reads STAGING
names the check as the holder ("a `promote --check` is reading it"), not "another promotion's gate", which sends
the operator looking for a promotion that is not running."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import StandInApi
from test_promotion_evidence import A
from test_review30_rel_lock_words import LocalLocks

from goldgate.release.lock import StackBusy


@pytest.mark.parametrize("check", [False, True])
def test_a_gate_refused_by_a_promote_check_names_the_check(tmp_path: Path, check: bool) -> None:
    home = tmp_path / "home"
    holder = LocalLocks(StandInApi(image_tag=A), {}, home=home)
    with holder.gate_hold("staging", check=True), pytest.raises(StackBusy) as refused, \
            holder.gate_hold("staging", check=check):
        pass
    said = str(refused.value)
    assert "a `promote --check` is reading it" in said and "another promotion" not in said, said
