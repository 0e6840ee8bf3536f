"""A rollback's outcome makes a release verified: it must name the image its smoke cases passed on, not whatever the
stack file pins by the time the outcome is written. A writer outside the release lock (a `pulumi config set` from
another checkout, a promotion run with another --home) that re-pins PROD between the smoke run and the outcome
made its image a "verified release": never smoke-tested, maybe never on STAGING, and the next rollback's target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target

from goldgate.release.history import last_verified, verified_releases
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
OTHER = "local/worker@sha256:" + "f" * 64


def test_a_pin_moved_after_the_rollbacks_smoke_is_not_recorded_as_verified(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.delenv("GOLDGATE_LEDGER_KEY", raising=False)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        for image in (A, B):
            target.deploy("staging", image, lambda _m: None)
            assert run_golden(target, "staging", Ledger(home), paths=paths, poll_s=0.01).passed
            assert promote(target, Ledger(home), home, paths=paths).ok
        recorded = Ledger.append

        def another_writer_repins_after_the_smoke(self: Ledger, kind: str, **fields: Any) -> Any:
            entry = recorded(self, kind, **fields)
            if kind == "golden" and fields.get("suite") == "smoke" and fields.get("image") == A:
                target.pins["prod"] = OTHER     # outside the lock, after the smoke cases passed on A
            return entry

        monkeypatch.setattr(Ledger, "append", another_writer_repins_after_the_smoke)
        outcome = rollback(target, Ledger(home), home, paths=paths)
        monkeypatch.undo()
    assert outcome.ok and outcome.image == A
    assert outcome.prod_image == OTHER          # the pin as found is still reported (and recorded as `pinned`)
    entries = Ledger(home).entries()
    last = entries[-1]
    assert last.kind == "rollback" and last.get("pinned") == OTHER
    # Before: prod_image was OTHER, so OTHER became the newest verified release and the next rollback's target.
    assert last.get("prod_image") == A
    assert OTHER not in [r.image for r in verified_releases(entries)]
    assert last_verified(entries, exclude=B).image == A
