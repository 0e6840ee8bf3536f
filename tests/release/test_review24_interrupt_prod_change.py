"""A promotion or rollback cut short: a cancelled CI job (the runner's SIGTERM) or Ctrl-C. SIGTERM killed goldgate
outright, with not a word on what PROD was left on, and Ctrl-C said only "interrupted"; after an automatic rollback
cut short, PROD stayed on a release its smoke cases had failed on, and the next promotion, refused by the gate,
said "PROD unchanged" and nothing of it. Now either interrupt ends with a line naming the change left open, PROD's
pin and the command that settles it, and the next promotion says PROD is pinned to a release found broken there.
Stacks are the in-process target over the stand-in job API (test_promotion_evidence)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes
from test_promotion_partial_failure import A, B, _broken_on

from goldgate.release.gate import PromotionRefused
from goldgate.release.history import interrupted
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths

TESTS = Path(__file__).resolve().parents[1]

# The job as CI runs it, in a process of its own: A is PROD's release, B passed on STAGING, and the runner
# cancels the job (SIGTERM) as PROD takes B.
CANCELLED_JOB = f"""
import os, signal, sys
from pathlib import Path
from release_support import StandInApi, standin_api
from test_promotion_evidence import Target, _released, _staging_passes
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths

A, B = {A!r}, {B!r}


class CancelledAsProdTakesB(Target):
    def deploy(self, stack, image, progress):
        result = super().deploy(stack, image, progress)
        if stack == "prod" and image == B:
            os.kill(os.getpid(), signal.SIGTERM)
        return result


home, ledger = Path(sys.argv[1]), Ledger(Path(sys.argv[1]))
paths = GoldenPaths(*(Path(arg) for arg in sys.argv[2:]))
with standin_api(StandInApi(image_tag=A)) as api:
    target = CancelledAsProdTakesB(api, {{}})
    _released(target, ledger, home, paths, A)
    _staging_passes(target, ledger, paths, B)
    try:
        promote(target, ledger, home, paths=paths, progress=lambda m: print(m, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        sys.exit(130)   # as the CLI does
"""


def test_a_promotion_cancelled_by_sigterm_says_what_prod_was_left_on_and_the_next_rollback_settles_it(
        tmp_path: Path, paths: GoldenPaths) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS), str(TESTS / "release")])}
    home = tmp_path / "home"
    given = [str(home), str(paths.cases_dir), str(paths.references_dir), str(paths.reports_dir)]
    job = subprocess.run([sys.executable, "-c", CANCELLED_JOB, *given], check=False, capture_output=True, text=True,
                         env=env, timeout=120)
    assert job.returncode != -signal.SIGTERM, "killed outright: nothing said what PROD was left on"
    assert job.returncode == 130, job.stderr
    [open_intent] = interrupted(Ledger(home).entries())       # recorded, and nothing claims it finished
    assert (open_intent.kind, open_intent.image, open_intent.before) == ("promotion", B, A)
    said = job.stderr.strip().splitlines()[-1]
    assert said == (f"terminated (SIGTERM): the promotion of {B} on prod (ledger #{open_intent.intent_seq}) did not "
                    f"finish and no smoke run judged {B} on prod; prod is pinned to {B}; `goldgate promote` tries it "
                    f"again (and smokes it), or `goldgate rollback` puts back {A} (not a verdict on it)")
    with standin_api(StandInApi(image_tag=B)) as api:          # the next job, on the state the cancelled one left
        target = Target(api, {"staging": B, "prod": B})
        notes: list[str] = []
        outcome = rollback(target, Ledger(home), home, paths=paths, progress=notes.append)
    assert outcome.ok and target.pins["prod"] == A
    assert f"an earlier promotion (ledger #{open_intent.intent_seq}) was interrupted; prod is pinned to {B}, " \
           "recorded" in notes
    assert interrupted(Ledger(home).entries()) == []


class CancelledRollback(Target):
    """Ctrl-C as the automatic rollback's deploy starts, before PROD's pin moves back (once)."""

    cut = True

    def deploy(self, stack, image, progress):  # type: ignore[no-untyped-def]
        if self.cut and stack == "prod" and image == A and self.pins.get("prod") == B:
            self.cut = False
            raise KeyboardInterrupt
        return super().deploy(stack, image, progress)


def test_an_automatic_rollback_cut_short_says_prod_is_on_a_release_its_smoke_failed_on_and_so_does_the_next_promote(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = CancelledRollback(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        _broken_on(api, B)
        notes: list[str] = []
        with pytest.raises(KeyboardInterrupt):
            promote(target, ledger, home, paths=paths, progress=notes.append)
        assert target.pins["prod"] == B
        smoke = next(e for e in reversed(ledger.entries()) if e.kind == "golden" and e.get("stack") == "prod")
        assert smoke.get("image") == B and smoke.get("passed") is False
        [_, cut_short] = interrupted(ledger.entries())        # the promotion and its automatic rollback
        assert notes[-1] == (f"interrupted: the rollback of {A} on prod (ledger #{cut_short.intent_seq}) did not "
                             f"finish; prod is pinned to {B}, whose smoke run failed there (ledger #{smoke.seq}): "
                             f"`goldgate rollback` puts back {A}")

        # The next job: the gate refuses B ("PROD unchanged"), so it must say PROD is on a release found broken there.
        notes.clear()
        with pytest.raises(PromotionRefused):
            promote(target, ledger, home, paths=paths, progress=notes.append)
        assert (f"prod is pinned to {B}, whose smoke run failed there (ledger #{smoke.seq}): `goldgate rollback` "
                "takes prod off it") in notes
        assert rollback(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == A


def test_an_interrupt_before_prod_changed_says_nothing_was_left_open(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)

    class CutDuringTheGate(Target):
        cut = False

        def error_rate(self, stack, since):  # type: ignore[no-untyped-def]
            if self.cut:
                raise KeyboardInterrupt
            return super().error_rate(stack, since)

    with standin_api(StandInApi(image_tag=A)) as api:
        target = CutDuringTheGate(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        entries, target.cut = len(ledger.entries()), True
        notes: list[str] = []
        with pytest.raises(KeyboardInterrupt):
            promote(target, ledger, home, paths=paths, progress=notes.append)
    assert notes[-1] == (f"interrupted: no change of prod is left open in the ledger; prod is pinned to {A} "
                         "(`goldgate history`)")
    assert len(ledger.entries()) == entries and target.pins["prod"] == A
