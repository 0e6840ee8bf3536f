"""`rollback --to <hex prefix>` names one verified release or none: a prefix two releases share is refused with both
named, never taken as the newer one (the operator may have meant the other); fewer than 7 hex digits name nothing. Before
this test nothing held either."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.history import UnknownRelease, resolve
from goldgate.release.ledger import Ledger

OLD = "local/worker@sha256:" + "abcdef12" + "0" * 56
NEW = "local/worker@sha256:" + "abcdef12" + "1" * 56


def test_a_digest_prefix_two_verified_releases_share_is_refused_naming_both(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    for seq, image in enumerate((OLD, NEW), start=1):
        ledger.append("promotion", phase="outcome", intent_seq=seq, stack="prod", target="local", image=image,
                      prod_image=image, outcome="promoted")
    entries = ledger.entries()
    with pytest.raises(UnknownRelease, match=f"'abcdef12' matches several verified releases \\({OLD}, {NEW}\\); "
                                             "give the full digest"):
        resolve(entries, "abcdef12")
    with pytest.raises(UnknownRelease, match="'abcdef' is not a verified release"):   # under 7 hex digits: no prefix
        resolve(entries, "abcdef")
    assert resolve(entries, "ABCDEF121").image == NEW
    assert resolve(entries, "sha256:abcdef120").image == OLD
