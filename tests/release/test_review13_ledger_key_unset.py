"""Release commands on a signed ledger without GOLDGATE_LEDGER_KEY. Unkeyed, every ledger line is taken as written,
so a line appended to the ledger branch without the key (a forged promotion that "explains" main's PROD pin, a
forged STAGING deploy) decided what `goldgate check-prod-file` let a CI job take from main, or what `goldgate
pins-onto-main` gave back to it. Now they refuse, as promote and rollback do, whenever their decision relies on a
ledger line; a decision that reads none (main's file is this checkout's, a rollback's PROD pin) runs without the
key, as CI's rollback job runs it. `goldgate history` says that it checked no MAC."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from release_support import invoke
from test_main_pins import (
    FIRST,
    KEY,
    LATER,
    SECOND,
    KeyedSecondPush,
    error_line,
    pins_argv,
    stack_text,
    stacks,
    staging_deploy,
    write,
)

from goldgate.release.ledger import Ledger

KEY_ENV = "GOLDGATE_LEDGER_KEY"
NO_KEY = (r"is signed with a ledger key \(ledger #\d+ carries a MAC\) but GOLDGATE_LEDGER_KEY is not set, .*; nothing "
          r"was changed$")


def _check_prod_file(capsys: pytest.CaptureFixture, second: KeyedSecondPush, *extra: str) -> tuple[int, str, str]:
    return invoke(capsys, "check-prod-file", "--main-file", str(second.mains), "--stack-file", str(second.ours),
                  "--home", str(second.home), *extra)


def test_check_prod_file_without_the_key_does_not_take_mains_file_on_a_forged_promotion(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The promotion that "set main's PROD pin" was appended without the key. Before, unkeyed, it was trusted: the job
    # went on with main's PROD file (exit 0, taken_from_main).
    second = KeyedSecondPush(tmp_path, unsigned="promotion")
    monkeypatch.delenv(KEY_ENV, raising=False)
    code, out, err = _check_prod_file(capsys, second, "--report", str(second.report))
    assert (code, out) == (1, "")
    line = error_line(err)
    assert line.startswith("goldgate: error: cannot take main's PROD stack file: ")
    assert re.search(NO_KEY, line), line
    # With the key, the forged line is named for what it is.
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    code, _, err = _check_prod_file(capsys, second, "--report", str(second.report))
    assert code == 1 and "ledger #4 (promotion) carries no MAC" in error_line(err)


def test_check_prod_file_without_the_key_still_decides_what_reads_no_ledger_line(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    second = KeyedSecondPush(tmp_path, unsigned=None)
    monkeypatch.delenv(KEY_ENV, raising=False)
    # A rollback (no report) on a checkout whose PROD file is not main's: refused for that, not for the key.
    code, _, err = _check_prod_file(capsys, second)
    assert code == 1 and "is not main's: PROD's pin or config changed" in error_line(err)
    # Main's file is this checkout's: nothing to explain, CI's rollback job runs it without the key.
    write(second.mains, second.ours.read_text())
    code, out, err = _check_prod_file(capsys, second, "--json")
    assert (code, err) == (0, "") and json.loads(out)["taken_from_main"] is False


def test_pins_onto_main_without_the_key_does_not_move_stagings_pin_to_a_forged_deploy(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    staging_deploy(Ledger(home, key=KEY), FIRST)
    monkeypatch.delenv(KEY_ENV, raising=False)
    staging_deploy(Ledger(home), SECOND)   # appended without the key, as a forger who can push the branch would
    stacks(tmp_path / "ours" / "stacks", SECOND, SECOND)
    stacks(tmp_path / "main" / "stacks", LATER, FIRST)
    # Before: the unsigned deploy of SECOND was STAGING's last, and SECOND went onto main as STAGING's pin.
    code, out, err = invoke(capsys, *pins_argv(tmp_path, home))
    assert (code, out) == (1, "")
    line = error_line(err)
    assert line.startswith("goldgate: error: cannot move STAGING's pin on main: ")
    assert re.search(NO_KEY, line), line
    for stack, pin in (("staging", LATER), ("prod", FIRST)):   # nothing written, PROD's move included
        assert (tmp_path / "main" / "stacks" / f"Pulumi.{stack}.yaml").read_text() == stack_text(stack, pin)
    # A rollback's pin commit (`--stack prod`) reads no ledger line: it runs without the key.
    code, out, err = invoke(capsys, *pins_argv(tmp_path, home), "--stack", "prod")
    assert (code, err) == (0, "") and out.splitlines() == [f"prod: {FIRST} -> {SECOND}"]
    # With the key, STAGING's pin follows the signed deploy: main keeps its own, and says why.
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    code, out, err = invoke(capsys, *pins_argv(tmp_path, home), "--json")
    assert (code, err) == (0, "")
    assert [k["stack_runs"] for k in json.loads(out)["kept"]] == [FIRST]
    assert (tmp_path / "main" / "stacks" / "Pulumi.staging.yaml").read_text() == stack_text("staging", LATER)



def test_history_without_the_key_does_not_pass_a_signed_ledger_off_as_checked(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # CI's ledger restore prints `goldgate history` without the key. Before, its last line said "hash chain verified"
    # and nothing more, over a forged unsigned line as over a signed one.
    second = KeyedSecondPush(tmp_path, unsigned="promotion")
    monkeypatch.delenv(KEY_ENV, raising=False)
    code, out, err = invoke(capsys, "history", "--home", str(second.home))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == ("6 entries; hash chain verified; the MACs of its 5 signed entries are not "
                                    "checked: GOLDGATE_LEDGER_KEY is not set")
    monkeypatch.setenv(KEY_ENV, KEY.decode())
    code, out, _ = invoke(capsys, "history", "--home", str(second.home))
    assert code == 0 and out.splitlines()[-1].startswith("6 entries; hash chain verified; 1 without a valid MAC")
    # A ledger nobody signed reads as before.
    monkeypatch.delenv(KEY_ENV)
    plain = tmp_path / "plain"
    staging_deploy(Ledger(plain), FIRST)
    code, out, _ = invoke(capsys, "history", "--home", str(plain))
    assert code == 0 and out.splitlines()[-1] == "1 entry; hash chain verified"
