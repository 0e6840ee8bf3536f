"""Review 29 (rel2): a local PROD whose pin.json was edited by hand while its host kept serving the release it had.
`goldgate status prod`'s pin line offers the ways out; both must work:
- `goldgate rollback --to <the pinned release>`, an earlier verified one, was refused "prod already runs ...; nothing
  to roll back": rollback compared the release with the pin, not with what the host serves;
- `goldgate rollback --to <the served release>` put the pin back, and then said the hand pin "was pinned by an
  interrupted change and never served": its outcome now says the pin was set outside goldgate
  (`pinned_outside_goldgate` in --json), and a pin an interrupted promotion moved is still said to be that."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from promotion_support import released
from release_support import invoke
from test_promotion_evidence import A, B, Target
from test_review29_rel_hand_pinned_prod import LocalLike

import goldgate.commands.release as release_commands
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths


class Host:
    """A local platform whose running PROD host serves `image` (pin.json may name another)."""

    def __init__(self, image: str) -> None:
        self.image = image

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=True, image=self.image)


def _pinned_by_hand(target: Target, image: str) -> None:
    target.pins["prod"] = image     # pin.json edited; the host still serves what it served
    target.platform = Host(target.api.image_tag)   # type: ignore[attr-defined]


def test_a_rollback_to_the_earlier_verified_release_pinned_by_hand_is_not_refused(
        tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B, make=lambda api: LocalLike(api, {})) as r:
        _pinned_by_hand(r.target, A)
        outcome = rollback(r.target, r.ledger, r.home, to=A, paths=paths)
    assert outcome.ok and outcome.image == A and r.target.pins["prod"] == A and r.target.api.image_tag == A
    assert (outcome.before, outcome.served) == (A, B)


def test_a_rollback_to_what_it_runs_is_still_refused(tmp_path: Path, paths: GoldenPaths) -> None:
    with released(tmp_path, paths, A, B, make=lambda api: LocalLike(api, {})) as r:
        r.target.platform = Host(B)   # type: ignore[attr-defined]   # pin and host agree
        with pytest.raises(Exception, match=f"prod already runs {B}; nothing to roll back"):
            rollback(r.target, r.ledger, r.home, to=B, paths=paths)


def _rollback_json(capsys: pytest.CaptureFixture[str], r, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
                   to: str) -> dict:
    monkeypatch.setattr(release_commands, "_deployer", lambda _args: r.target)
    monkeypatch.setattr(release_commands, "_paths", lambda _args: paths)
    code, out, err = invoke(capsys, "rollback", "--to", to, "--home", str(r.home), "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_rollback_to_the_served_release_off_a_hand_pin_says_it_was_pinned_by_hand(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with released(tmp_path, paths, A, B, make=lambda api: LocalLike(api, {})) as r:
        _pinned_by_hand(r.target, A)
        said = _rollback_json(capsys, r, paths, monkeypatch, B)
    assert (said["outcome"], said["before"], said["served"], said["prod_image"]) == ("rolled_back", A, B, B)
    assert said["pinned_outside_goldgate"] is True, said


def test_a_pin_an_interrupted_promotion_moved_is_not_called_a_hand_pin(
        tmp_path: Path, paths: GoldenPaths, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with released(tmp_path, paths, B, make=lambda api: LocalLike(api, {})) as r:
        r.ledger.append("promotion", phase="intent", stack="prod", target="local", image=A, before=B, trigger="test")
        _pinned_by_hand(r.target, A)   # the promotion's deploy moved the pin, then it was killed
        said = _rollback_json(capsys, r, paths, monkeypatch, B)
    assert (said["outcome"], said["before"], said["served"]) == ("rolled_back", A, B)
    assert said["pinned_outside_goldgate"] is False, said
