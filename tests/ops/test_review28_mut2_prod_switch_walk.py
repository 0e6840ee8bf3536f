"""`goldgate checklist prod` counts a PROD worker's `models_loaded` line from the change that switched PROD to its
image (serving_window's startup_change), walking back over changes that only deployed that image again. The walk
stops wherever the ledger cannot vouch that PROD kept running the image: an entry that does not authenticate under
the ledger key, an outcome that left another image pinned, a promotion of another image whose deploy was applied
(its failure came after PROD took it), and a rollback that found PROD's host serving another image than its pin.
Each stop keeps the start-up line counting from the newer change: a worker older than it may be one of another
image's."""

from __future__ import annotations

from dataclasses import replace

from goldgate.ops.checklist_facts import serving_window
from goldgate.release.ledger import Entry

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def _e(seq: int, kind: str, phase: str, **fields: object) -> Entry:
    return Entry(seq=seq, ts=f"2026-12-01T10:00:{seq:02d}.000Z", kind=kind,
                 fields={"stack": "prod", "target": "local", "phase": phase, **fields}, prev="", hash="")


def _first_a() -> list[Entry]:
    """PROD's first promotion, of A."""
    return [_e(1, "promotion", "intent", image=A, before=None),
            _e(2, "promotion", "outcome", intent_seq=1, image=A, before=None, after=A, prod_image=A,
               outcome="promoted")]


def _again_a(seq: int) -> list[Entry]:
    """A promotion of A, the image PROD runs: no new release."""
    return [_e(seq, "promotion", "intent", image=A, before=A),
            _e(seq + 1, "promotion", "outcome", intent_seq=seq, image=A, before=A, after=A, prod_image=A,
               outcome="promoted")]


def _startup_change(entries: list[Entry]) -> str | None:
    window = serving_window(entries, "prod", "prod", A)
    assert window is not None
    return window.startup_change


def test_a_promotion_of_the_image_prod_runs_counts_from_the_first() -> None:
    assert _startup_change([*_first_a(), *_again_a(3)]) == "promotion #1 at 2026-12-01T10:00:01.000Z"


def test_an_entry_that_does_not_authenticate_ends_the_walk() -> None:
    middle = [replace(e, authentic=False) for e in _again_a(3)]
    assert _startup_change([*_first_a(), *middle, *_again_a(5)]) is None


def test_an_outcome_that_left_another_image_pinned_ends_the_walk() -> None:
    # A promotion of B that failed before PROD took it (passed over), then an outcome that shows B pinned.
    passed_over = [_e(3, "promotion", "intent", image=B, before=A),
                   _e(4, "promotion", "outcome", intent_seq=3, image=B, before=A, after=A, outcome="deploy_failed",
                      applied=False)]
    b_pinned = [_e(5, "rollback", "outcome", intent_seq=99, image=B, before=A, after=B, outcome="rolled_back")]
    assert _startup_change([*_first_a(), *passed_over, *_again_a(6)]) == "promotion #1 at 2026-12-01T10:00:01.000Z"
    assert _startup_change([*_first_a(), *passed_over, *b_pinned, *_again_a(6)]) is None


def test_a_promotion_of_another_image_whose_deploy_was_applied_ends_the_walk() -> None:
    applied = [_e(3, "promotion", "intent", image=B, before=A),
               _e(4, "promotion", "outcome", intent_seq=3, image=B, before=A, after=A, outcome="deploy_failed",
                  applied=True)]
    assert _startup_change([*_first_a(), *applied, *_again_a(5)]) is None


def test_a_rollback_that_found_another_image_served_is_the_switch() -> None:
    # PROD's pin said A, its host served B (a deploy cut short): the rollback to A started A's workers anew.
    rollback = [_e(3, "rollback", "intent", image=A, before=A, served=B),
                _e(4, "rollback", "outcome", intent_seq=3, image=A, before=A, after=A, prod_image=A,
                   outcome="rolled_back")]
    assert _startup_change([*_first_a(), *rollback]) is None
    kept = [replace(rollback[0], fields={**rollback[0].fields, "served": A}), rollback[1]]
    assert _startup_change([*_first_a(), *kept]) == "promotion #1 at 2026-12-01T10:00:01.000Z"


def test_staging_a_later_deploy_that_does_not_authenticate_opens_no_window() -> None:
    def deploy(seq: int, before: str | None, after: str) -> Entry:
        return Entry(seq=seq, ts=f"2026-12-01T10:00:{seq:02d}.000Z", kind="deploy",
                     fields={"stack": "staging", "target": "local", "before": before, "after": after}, prev="",
                     hash="")

    forged = replace(deploy(2, A, A), authentic=False)   # would hide the failures since #1
    window = serving_window([deploy(1, None, A), forged], "staging", "staging", A)
    assert window is not None and window.change.startswith("deploy #1 at "), window
