"""A promotion or rollback cut short on PROD, and what goldgate says and records after it (session 27's rehearsal of
bad days on the local target).

- A rollback that only takes PROD off a candidate no smoke run judged there (its promotion interrupted before its smoke
  finished) is no verdict against it: the gate's prod_verdict let it through; it refused it as "rejected".
- PROD pinned to such a candidate is said, with both ways out, by every refusal: it said "PROD unchanged".
- `promote --check` judges as `promote` will after it closes an interrupted rollback; it said "gate would pass".
- The interrupt line after a `--retry-rejected` promotion gives the flag back.
- A rollback of a local PROD that is not up is refused before anything is recorded.
- `rollback --to` says why a name is no verified release (too short, built but never verified) and accepts the
  image's tag.
Stacks are the in-process target over the stand-in job API (test_promotion_evidence)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from release_support import StandInApi, standin_api
from test_cli_errors import run
from test_gate_and_lock import failed
from test_promotion_evidence import A, B, C, Target, _released, _staging_passes

import goldgate.commands.release as release_cmd
from goldgate.release.gate import PromotionRefused
from goldgate.release.history import UnknownRelease, interrupted, resolve
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

ID_A = "2026.11.0-gaaaaaaaaaaaa-m111111111111-daaaaaaaaaaaa"
ID_B = "2026.11.0-gbbbbbbbbbbbb-m111111111111-dbbbbbbbbbbbb"


class CutAfterThePin(Target):
    """Ctrl-C (or SIGTERM, or a SIGKILL's equivalent for the ledger) right after PROD's pin moved to `cut`, before its
    smoke run: once."""

    def __init__(self, api: StandInApi, pins: dict[str, str], cut: str) -> None:
        super().__init__(api, pins)
        self.cut: str | None = cut

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        result = super().deploy(stack, image, progress)
        if stack == "prod" and image == self.cut:
            self.cut = None
            raise KeyboardInterrupt
        return result


def _prod_verdict(target: Target, ledger: Ledger, paths: GoldenPaths, **kw: object) -> bool:
    decision = check_gate(target, ledger, paths.reports_dir / "latest.json", **kw)[0]  # type: ignore[arg-type]
    return "prod_verdict" not in failed(decision)


def _interrupted_promotion_of_b(api: StandInApi, home: Path, paths: GoldenPaths,
                                **promote_kw: object) -> tuple[CutAfterThePin, Ledger, list[str]]:
    ledger = Ledger(home)
    target = CutAfterThePin(api, {}, cut=B)
    _released(target, ledger, home, paths, A)
    _staging_passes(target, ledger, paths, B)
    notes: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        promote(target, ledger, home, paths=paths, progress=notes.append, **promote_kw)  # type: ignore[arg-type]
    assert target.pins["prod"] == B
    assert not any(e.kind == "golden" and e.get("stack") == "prod" and e.get("image") == B for e in ledger.entries())
    return target, ledger, notes


def test_the_rollback_the_interrupt_line_offers_is_no_verdict_on_a_candidate_no_smoke_run_judged(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        target, ledger, notes = _interrupted_promotion_of_b(api, home, paths)
        [lost] = interrupted(ledger.entries())
        rolled = rollback(target, ledger, home, paths=paths)
        assert rolled.ok and target.pins["prod"] == A
        # STAGING still runs B and its report passed: B may go to PROD again, as nothing found it wanting there.
        target.pins["staging"] = B
        assert _prod_verdict(target, ledger, paths)
        target.api.image_tag = B
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == B
    said = notes[-1]    # and the interrupt line said the rollback it offers is no verdict
    assert said.startswith(f"interrupted: the promotion of {B} on prod (ledger #{lost.intent_seq}) did not "
                           f"finish and no smoke run judged {B} on prod")
    assert f"`goldgate rollback` puts back {A} (not a verdict on it)" in said


class CutBeforeThePin(Target):
    """Ctrl-C as a PROD deploy of `cut` starts, before the pin moves: once."""

    cut: str | None = None

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        if stack == "prod" and image == self.cut:
            self.cut = None
            raise KeyboardInterrupt
        return super().deploy(stack, image, progress)


def test_finishing_that_rollback_after_it_too_was_cut_short_is_still_no_verdict(tmp_path: Path,
                                                                                paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        cut, ledger, _ = _interrupted_promotion_of_b(api, home, paths)
        target = CutBeforeThePin(api, cut.pins)
        target.cut = A
        with pytest.raises(KeyboardInterrupt):
            rollback(target, ledger, home, paths=paths)
        assert target.pins["prod"] == B
        assert rollback(target, ledger, home, paths=paths).ok and target.pins["prod"] == A
        target.pins["staging"] = B
        assert _prod_verdict(target, ledger, paths)


def test_a_rollback_of_a_release_prod_served_and_verified_stays_a_verdict(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).ok
        target.pins["staging"] = B
        assert not _prod_verdict(target, ledger, paths)


def test_a_refusal_while_prod_is_pinned_to_an_unjudged_candidate_says_so_not_prod_unchanged(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        target, ledger, _ = _interrupted_promotion_of_b(api, home, paths)
        notes: list[str] = []
        with pytest.raises(PromotionRefused):   # another digest than STAGING's: refused whatever PROD runs
            promote(target, ledger, home, paths=paths, progress=notes.append, expected_image=C)
        assert any(f"prod is pinned to {B}, which no smoke run judged there" in n and "`goldgate promote`" in n
                   and f"`goldgate rollback` puts back {A}" in n for n in notes), notes
        monkeypatch.setattr(release_cmd, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_cmd, "_paths", lambda _args: paths)
        code, out, _ = run(capsys, home, "promote", "--image", C)
    assert code == 1
    assert "PROD unchanged" not in out
    assert f"prod is pinned to {B}, which no smoke run judged there" in out


def test_promote_check_judges_as_promote_after_an_interrupted_rollback(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = CutAfterThePin(api, {}, cut=C)   # never C: cut by hand below
        _released(target, ledger, home, paths, A, B)
        target.cut = A                             # the operator's rollback to A, cut short after the pin moved
        with pytest.raises(KeyboardInterrupt):
            rollback(target, ledger, home, paths=paths)
        target.pins["staging"] = B
        monkeypatch.setattr(release_cmd, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_cmd, "_paths", lambda _args: paths)
        code, out, _ = run(capsys, home, "promote", "--check")
        assert code == 1 and "gate would refuse" in out, out
        assert any(ln.split()[:2] == ["prod_verdict", "FAILED"] for ln in out.splitlines()), out
        assert len(interrupted(ledger.entries())) == 1            # --check wrote nothing
        with pytest.raises(PromotionRefused, match="prod_verdict"):
            promote(target, ledger, home, paths=paths)


def test_the_interrupt_line_after_a_retry_rejected_promotion_gives_the_flag_back(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        _, _, notes = _interrupted_promotion_of_b(api, home, paths, retry_rejected=True)
    assert "`goldgate promote --retry-rejected` tries it again" in notes[-1], notes[-1]


class ServesA:
    """A local platform whose running PROD host still serves A."""

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=True, image=A)


def test_a_rollback_after_a_deploy_that_moved_only_the_pin_says_and_records_what_prod_served(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with standin_api(StandInApi(image_tag=A)) as api:
        target, ledger, _ = _interrupted_promotion_of_b(api, home, paths)
        target.platform = ServesA()   # type: ignore[attr-defined]   # the host never took B
        monkeypatch.setattr(release_cmd, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_cmd, "_paths", lambda _args: paths)
        code, out, _ = run(capsys, home, "rollback")
    assert code == 0 and target.pins["prod"] == A
    assert f"{B} -> " not in out and f"PROD redeployed {A}, which its host still served" in out, out
    closed = next(e for e in ledger.entries() if e.kind == "promotion" and e.get("outcome") == "interrupted")
    assert (closed.get("after"), closed.get("pinned")) == (A, B)


class DownPlatform:
    """A local platform whose PROD stack is not up."""

    home = Path("/nonexistent")

    def status(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(running=False, image=None)

    def not_up(self, stack: str) -> Exception:
        return RuntimeError(f"stack {stack} is not up; run `goldgate up {stack}`")


@pytest.mark.parametrize("command", [["rollback"], ["promote"]])
def test_a_local_prod_that_is_not_up_is_refused_before_the_ledger(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        _staging_passes(target, ledger, paths, C)
        target.platform = DownPlatform()   # type: ignore[attr-defined]
        target.refuse = {A, C}              # a down stack's deploy fails
        before = len(ledger.entries())
        monkeypatch.setattr(release_cmd, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_cmd, "_paths", lambda _args: paths)
        code, _, err = run(capsys, home, *command)
    assert code == 1
    assert "`goldgate up prod`" in err and "nothing was changed or recorded" in err, err
    assert len(ledger.entries()) == before


def _ledger_of(home: Path) -> Ledger:
    ledger = Ledger(home)
    for image, rid in ((A, ID_A), (B, ID_B), (C, "2026.11.0-gcccccccccccc-m111111111111-dcccccccccccc")):
        ledger.append("build", image=image, release_id=rid)
    for image in (A, B):
        ledger.append("promotion", phase="outcome", stack="prod", target="local", image=image, prod_image=image,
                      outcome="promoted", before=None, after=image)
    return ledger


def test_rollback_to_says_why_a_name_is_no_verified_release(tmp_path: Path) -> None:
    entries = _ledger_of(tmp_path / "home").entries()
    with pytest.raises(UnknownRelease, match=r"too short \(give 7\+ hex"):
        resolve(entries, "aaaaaa")
    with pytest.raises(UnknownRelease, match="built, never verified on PROD"):
        resolve(entries, "2026.11.0-gcccccccccccc-m111111111111-dcccccccccccc")
    with pytest.raises(UnknownRelease) as refused:
        resolve(entries, "nothing-like-it", current=B)
    assert ID_A in str(refused.value) and ID_B not in str(refused.value)   # PROD's own release is no step back
    assert resolve(entries, f"local/worker:{ID_A}", current=B).image == A  # the image's tag, as the runbook says
