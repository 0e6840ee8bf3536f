"""`goldgate pins-onto-main` and `goldgate check-prod-file` in a state dir that serves both targets (the README allows
it: the local release, then `--target cloud` from the same checkout). Both decide about the Pulumi stack files, so
only the cloud target's ledger entries may count.

Before: `GOLDGATE_TARGET=cloud goldgate pins-onto-main` kept main's STAGING pin, warning that "STAGING's last deploy in
the ledger left local/worker@sha256:..." (a deploy to the local STAGING stack), and a local promotion recorded after
the golden run stopped a cloud promotion as if PROD had changed since."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from release_support import invoke
from test_main_pins import FIRST, SECOND, SecondPush, stack_text, write

from goldgate.release.ledger import Ledger
from goldgate.release.main_pins import read_stack_file

LOCAL = "local/worker@sha256:" + "c" * 64   # a local snapshot, deployed to the local STAGING and PROD stacks


def _local_deploy(ledger: Ledger, stack: str = "staging") -> None:
    ledger.append("deploy", stack=stack, target="local", before=None, after=LOCAL, image=LOCAL, trigger="test")


def test_a_local_deploy_after_the_cloud_one_leaves_the_cloud_staging_pin_to_move_onto_main(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLDGATE_TARGET", "cloud")
    home = tmp_path / "home"
    ledger = Ledger(home)
    ledger.append("deploy", stack="staging", target="cloud", before=FIRST, after=SECOND, image=SECOND,
                  trigger="test")
    _local_deploy(ledger)   # `goldgate release` on the local target, from the same checkout, since
    for directory, image in ((tmp_path / "ours", SECOND), (tmp_path / "main" / "stacks", FIRST)):
        for stack in ("staging", "prod"):
            write(directory / f"Pulumi.{stack}.yaml", stack_text(stack, image))
    code, out, err = invoke(capsys, "pins-onto-main", "--main-dir", str(tmp_path / "main"), "--stacks-dir",
                            str(tmp_path / "ours"), "--home", str(home), "--json")
    assert code == 0, err
    moved = json.loads(out)
    assert moved["kept"] == [] and "local/worker" not in out, out
    assert [(m["stack"], m["before"], m["after"]) for m in moved["moved"]] == [("staging", FIRST, SECOND),
                                                                              ("prod", FIRST, SECOND)]
    assert read_stack_file(tmp_path / "main" / "stacks" / "Pulumi.staging.yaml").pin == SECOND


def test_a_local_deploy_alone_never_decides_the_cloud_staging_pin(tmp_path: Path) -> None:
    # With only a local deploy in the ledger, the cloud's STAGING never ran this run's pin as far as the ledger says:
    # main keeps its pin, and the warning names no local snapshot as what STAGING runs.
    from goldgate.release.main_pins import pins_onto_main

    ledger = Ledger(tmp_path / "home")
    _local_deploy(ledger)
    ours = {"staging": read_stack_file(write(tmp_path / "ours" / "s.yaml", stack_text("staging", SECOND)))}
    mains = {"staging": read_stack_file(write(tmp_path / "main" / "s.yaml", stack_text("staging", FIRST)))}
    pins = pins_onto_main(ours, mains, ledger.entries())
    assert pins.moves == () and [(k.kept, k.runs) for k in pins.kept] == [(FIRST, None)]


def test_a_local_promotion_after_the_golden_run_does_not_stop_the_cloud_promotion(tmp_path: Path) -> None:
    second = SecondPush(tmp_path)
    # The local target's release ran meanwhile: its promotion of a snapshot to the local PROD stack.
    for phase in ("intent", "outcome"):
        fields = {"after": LOCAL, "pinned": LOCAL, "prod_image": LOCAL, "outcome": "promoted"} if phase == "outcome" \
            else {}
        second.ledger.append("promotion", phase=phase, stack="prod", target="local", image=LOCAL, before=None,
                             trigger="test", **fields)
    check = second.check()
    assert (check.mains, check.promotion_seq, check.golden_seq) == (FIRST, 4, 6), check.message()
