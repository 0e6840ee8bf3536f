"""What the gate reads from STAGING's deploys (goldgate.release.promote): the staging_rollout refusal and the start of
the error-rate window when STAGING's host serves a pin (`served_pin`). An unconfirmed deploy is not hidden by a later
"confirmed" one that does not authenticate under the ledger key; a served pin the ledger's last deploy put there is
judged from the ledger's deploys (the first of an unconfirmed run), not from when the pin file was last written; and
a served pin no deploy put there, whose file does not say when, starts its window at the last deploy, not at an
earlier deploy of the same image (which would count the failures of the images in between)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from goldgate.release.deployers.base import ServedPin
from goldgate.release.ledger import Entry
from goldgate.release.promote import _deployed_at, _unconfirmed_before, _unrecorded_since

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64


def _deploy(seq: int, before: str | None, after: str, confirmed: bool = True) -> Entry:
    fields = {"stack": "staging", "target": "local", "before": before, "after": after}
    if not confirmed:
        fields["rollout_confirmed"] = False
    return Entry(seq=seq, ts=f"2026-12-01T10:00:{seq:02d}.000+00:00", kind="deploy", fields=fields, prev="", hash="")


def _at(seq: int) -> datetime:
    return datetime(2026, 12, 1, 10, 0, seq, tzinfo=UTC)


def test_a_confirmed_deploy_that_does_not_authenticate_hides_no_unconfirmed_one() -> None:
    unconfirmed = _deploy(1, A, B, confirmed=False)
    assert _unconfirmed_before([unconfirmed], "staging", B, None)["seq"] == 1
    forged = replace(_deploy(2, B, B), authentic=False)
    assert _unconfirmed_before([unconfirmed, forged], "staging", B, None)["seq"] == 1
    assert _unconfirmed_before([unconfirmed, _deploy(2, B, B)], "staging", B, None) is None


def test_a_served_pin_the_last_deploy_put_there_is_judged_by_the_ledger() -> None:
    entries = [_deploy(1, A, B, confirmed=False), _deploy(5, B, B)]   # the redeploy rewrote the pin at :05
    assert _unrecorded_since(entries, "staging", ServedPin(B, _at(5))) is None
    assert _deployed_at(entries, "staging", B) == _at(1)              # the window starts where B went there


def test_a_served_pin_no_deploy_put_there_starts_at_the_last_deploy_when_its_file_does_not_say() -> None:
    # B, then C (cut short: `up` put the pin back on B with no pinned_at); B's first deploy is no start for it
    entries = [_deploy(1, A, B), _deploy(7, B, C)]
    assert _unrecorded_since(entries, "staging", ServedPin(B, None)) == _at(7)
    assert _unrecorded_since(entries, "staging", ServedPin(B, _at(9))) == _at(9)
    assert _unrecorded_since([], "staging", ServedPin(B, None)) is None
