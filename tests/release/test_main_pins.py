"""What a CI run that checked out an older commit may take from main's stack files, and give back: the decisions
behind `goldgate check-prod-file` and `goldgate pins-onto-main`, over a real ledger and the repository's real
stack files (with test pins), and the two commands fed missing, malformed and hostile input."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from release_support import invoke

from goldgate.errors import SpecError
from goldgate.release.ledger import Ledger
from goldgate.release.main_pins import (
    PinNotMovable,
    ProdFileCheck,
    ProdFileNotMains,
    StackFile,
    check_prod_file,
    pins_onto_main,
    read_stack_file,
)

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64
BEFORE = "ghcr.example/acme/worker@sha256:" + "0" * 63 + "1"   # what PROD ran before either push
FIRST = "ghcr.example/acme/worker@sha256:" + "a" * 64          # the first push's release
SECOND = "ghcr.example/acme/worker@sha256:" + "b" * 64         # this run's digest
LATER = "ghcr.example/acme/worker@sha256:" + "e" * 64


def stack_text(stack: str, image: str) -> str:
    """The repository's real stacks/Pulumi.<stack>.yaml, pinned to `image`."""
    text = (REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert text.count(PLACEHOLDER) == 1
    return text.replace(PLACEHOLDER, image)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def prod_change(ledger: Ledger, kind: str, image: str, before: str, phase: str = "outcome") -> None:
    fields = {"stack": "prod", "image": image, "before": before, "trigger": "test"}
    if phase == "outcome":
        fields.update(after=image, pinned=image, prod_image=image,
                      outcome="promoted" if kind == "promotion" else "rolled_back")
    ledger.append(kind, phase=phase, **fields)


def qualify(ledger: Ledger, report: Path, image: str = SECOND) -> None:
    """This run's staging job: `image` deployed to STAGING, its golden run recorded with the report it wrote."""
    ledger.append("deploy", stack="staging", target="cloud", before=FIRST, after=image, image=image, trigger="test")
    write(report, json.dumps({"image": image, "stack": "staging", "passed": True}))
    ledger.append("golden", stack="staging", image=image, suite="full", passed=True,
                  report_sha256=hashlib.sha256(report.read_bytes()).hexdigest())


class SecondPush:
    """The second of two pushes close together: its checkout pins BEFORE on PROD; the first push's build and
    promotion of FIRST (on main now) are in the ledger before this run's golden run, which qualified SECOND."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.ledger = Ledger(self.home)
        for image in (FIRST, SECOND):  # in push order: main's pin is the earlier build
            self.ledger.append("build", image=image, trigger="test")
        prod_change(self.ledger, "promotion", FIRST, BEFORE, phase="intent")
        prod_change(self.ledger, "promotion", FIRST, BEFORE)
        self.report = tmp_path / "reports" / "latest.json"
        qualify(self.ledger, self.report)
        self.ours = write(tmp_path / "run" / "stacks" / "Pulumi.prod.yaml", stack_text("prod", BEFORE))
        self.mains = write(tmp_path / "main" / "Pulumi.prod.yaml", stack_text("prod", FIRST))

    def check(self, report: Path | None = None) -> ProdFileCheck:
        return check_prod_file(read_stack_file(self.ours), read_stack_file(self.mains), self.ledger.entries(),
                               report or self.report)


@pytest.fixture
def second(tmp_path: Path) -> SecondPush:
    return SecondPush(tmp_path)


# --- check_prod_file -----------------------------------------------------------------------------------------

def test_a_prod_file_that_is_mains_is_acted_on_without_a_report_or_a_ledger(tmp_path: Path) -> None:
    ours = write(tmp_path / "ours.yaml", stack_text("prod", FIRST))
    mains = write(tmp_path / "mains.yaml", stack_text("prod", FIRST))
    check = check_prod_file(read_stack_file(ours), read_stack_file(mains), [], None)
    assert check.promotion_seq is None and check.message() == f"{ours} is main's"


def test_a_rollback_stops_when_its_prod_file_is_not_mains(second: SecondPush) -> None:
    with pytest.raises(ProdFileNotMains, match=r"of this run's commit is not main's: .*start a new run from main$"):
        check_prod_file(read_stack_file(second.ours), read_stack_file(second.mains), second.ledger.entries(), None)


def test_the_second_of_two_pushes_close_together_takes_mains_prod_pin(second: SecondPush) -> None:
    check = second.check()
    assert (check.ours, check.mains, check.promotion_seq, check.golden_seq) == (BEFORE, FIRST, 4, 6)
    assert f"moved from {BEFORE} to {FIRST}" in check.message()


@pytest.mark.parametrize(("kind", "phase"), [("rollback", "outcome"), ("promotion", "outcome"),
                                             ("promotion", "intent"), ("rollback", "intent")])
def test_a_prod_change_after_the_qualifying_golden_run_stops_the_promotion(
        second: SecondPush, kind: str, phase: str) -> None:
    prod_change(second.ledger, kind, FIRST, BEFORE, phase=phase)
    with pytest.raises(ProdFileNotMains, match=rf"{kind} ledger #7 came later, and promoting now would undo it"):
        second.check()


def test_a_refused_promotion_after_the_golden_run_changed_nothing_on_prod(second: SecondPush) -> None:
    second.ledger.append("promotion", phase="refused", stack="prod", image=LATER, trigger="test")
    assert second.check().promotion_seq == 4


def test_a_config_change_on_main_stops_the_promotion(second: SecondPush) -> None:
    write(second.mains, stack_text("prod", FIRST).replace("workers_max: 3", "workers_max: 5"))
    with pytest.raises(ProdFileNotMains, match="differs from this run's commit in more than PROD's pin"):
        second.check()


def test_a_prod_file_without_a_pin_is_never_taken(second: SecondPush) -> None:
    write(second.mains, stack_text("prod", FIRST).replace(f'image: "{FIRST}"', "image: 42"))
    with pytest.raises(ProdFileNotMains, match="in more than PROD's pin"):
        second.check()


def test_a_pin_on_main_the_ledger_never_recorded_stops_the_promotion(second: SecondPush) -> None:
    write(second.mains, stack_text("prod", LATER))
    with pytest.raises(ProdFileNotMains, match=f"main pins {LATER} on PROD, but PROD's last recorded change left "
                                               f"{FIRST}: the ledger does not explain main's pin"):
        second.check()


def test_a_pin_on_main_set_by_a_rollback_stops_the_promotion(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    prod_change(ledger, "promotion", FIRST, BEFORE)
    prod_change(ledger, "rollback", BEFORE, FIRST)
    report = tmp_path / "latest.json"
    qualify(ledger, report)
    ours = StackFile(Path("stacks/Pulumi.prod.yaml"), stack_text("prod", FIRST), FIRST)
    mains = StackFile(Path("main.yaml"), stack_text("prod", BEFORE), BEFORE)
    with pytest.raises(ProdFileNotMains, match=rf"main's PROD pin {BEFORE} was set by rollback ledger #2 \(outcome "
                                               r"rolled_back\), not by a release"):
        check_prod_file(ours, mains, ledger.entries(), report)


def test_a_report_no_golden_run_wrote_stops_the_promotion(second: SecondPush, tmp_path: Path) -> None:
    other = write(tmp_path / "other.json", '{"image": "edited by hand"}')
    with pytest.raises(ProdFileNotMains, match="no golden run in the ledger wrote .*other.json"):
        second.check(other)


def test_an_empty_ledger_explains_nothing(tmp_path: Path) -> None:
    ours = StackFile(Path("stacks/Pulumi.prod.yaml"), stack_text("prod", BEFORE), BEFORE)
    mains = StackFile(Path("main.yaml"), stack_text("prod", FIRST), FIRST)
    report = write(tmp_path / "latest.json", "{}")
    with pytest.raises(ProdFileNotMains, match="no golden run in the ledger wrote"):
        check_prod_file(ours, mains, [], report)


def test_a_missing_report_stops_the_promotion(second: SecondPush, tmp_path: Path) -> None:
    with pytest.raises(ProdFileNotMains, match=r"gone.json: no golden report .*\(No such file or directory\)"):
        second.check(tmp_path / "gone.json")


KEY = b"0123456789abcdef" * 4   # a ledger key as `openssl rand -hex 32` gives one


class KeyedSecondPush(SecondPush):
    """SecondPush's story recorded under a ledger key, but for the `unsigned` entry ("promotion": the outcome that
    set main's pin; "golden": a later copy of the golden run): goldgate run without the key wrote it, as a forger who
    can push to the ledger branch would."""

    def __init__(self, tmp_path: Path, unsigned: str | None) -> None:
        self.home = tmp_path / "home"
        self.ledger = Ledger(self.home, key=KEY)
        forger = Ledger(self.home)
        for image in (FIRST, SECOND):
            (forger if unsigned == "builds" else self.ledger).append("build", image=image, trigger="test")
        prod_change(self.ledger, "promotion", FIRST, BEFORE, phase="intent")
        prod_change(forger if unsigned == "promotion" else self.ledger, "promotion", FIRST, BEFORE)
        self.report = tmp_path / "reports" / "latest.json"
        qualify(self.ledger, self.report)
        if unsigned == "golden":
            forger.append("golden", **self.ledger.entries()[-1].fields)
        self.ours = write(tmp_path / "run" / "stacks" / "Pulumi.prod.yaml", stack_text("prod", BEFORE))
        self.mains = write(tmp_path / "main" / "Pulumi.prod.yaml", stack_text("prod", FIRST))


def test_under_the_ledger_key_a_promotion_recorded_with_it_takes_mains_pin(tmp_path: Path) -> None:
    check = KeyedSecondPush(tmp_path, unsigned=None).check()
    assert (check.ours, check.mains, check.promotion_seq, check.golden_seq) == (BEFORE, FIRST, 4, 6)


def test_under_the_ledger_key_a_promotion_recorded_without_it_does_not_explain_mains_pin(tmp_path: Path) -> None:
    # Before: the MAC-less promotion was taken as it was, and the run promoted with main's PROD file.
    with pytest.raises(ProdFileNotMains, match=r"^ledger #4 \(promotion\) carries no MAC: .*only entries recorded "
                                               r"under the ledger key may let this run take main's PROD file; nothing"):
        KeyedSecondPush(tmp_path, unsigned="promotion").check()


def test_under_the_ledger_key_only_an_authenticated_golden_run_vouches_for_a_report(tmp_path: Path) -> None:
    second = KeyedSecondPush(tmp_path, unsigned="golden")
    assert second.check().golden_seq == 6     # the signed run that wrote the report, not the unsigned copy (#7)
    other = write(tmp_path / "other.json", "a report no signed golden run wrote")
    Ledger(second.home).append("golden", stack="staging", image=SECOND, suite="full", passed=True,
                               report_sha256=hashlib.sha256(other.read_bytes()).hexdigest())
    with pytest.raises(ProdFileNotMains, match=r"^ledger #8 \(golden\) carries no MAC"):
        second.check(other)


def test_under_the_ledger_key_builds_recorded_without_it_are_named_not_called_missing(tmp_path: Path) -> None:
    # CI's build job once ran outside the environment holding the key: its builds were unsigned, and the refusal
    # said "the ledger records no build", sending the operator looking for a build that was there.
    with pytest.raises(ProdFileNotMains, match=r"^ledger #1 \(build\) carries no MAC: .*only entries recorded under "
                                               r"the ledger key"):
        KeyedSecondPush(tmp_path, unsigned="builds").check()


# --- pins_onto_main ------------------------------------------------------------------------------------------

def stacks(directory: Path, staging: str, prod: str, newline: str = "\n") -> dict[str, StackFile]:
    for stack, image in (("staging", staging), ("prod", prod)):
        write(directory / f"Pulumi.{stack}.yaml", stack_text(stack, image).replace("\n", newline))
    return {stack: read_stack_file(directory / f"Pulumi.{stack}.yaml") for stack in ("staging", "prod")}


def staging_deploy(ledger: Ledger, image: str) -> None:
    ledger.append("deploy", stack="staging", target="cloud", before=FIRST, after=image, image=image, trigger="test")


def test_both_pins_move_onto_mains_files_and_nothing_else(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, SECOND)
    mains = stacks(tmp_path / "main", FIRST, FIRST)
    pins = pins_onto_main(stacks(tmp_path / "ours", SECOND, SECOND), mains, ledger.entries())
    assert [(m.stack, m.before, m.after) for m in pins.moves] == [("staging", FIRST, SECOND), ("prod", FIRST, SECOND)]
    assert [m.text for m in pins.moves] == [stack_text("staging", SECOND), stack_text("prod", SECOND)]
    assert pins.kept == ()


def test_a_staging_pin_older_than_stagings_last_deploy_stays_off_main(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, SECOND)
    staging_deploy(ledger, LATER)
    pins = pins_onto_main(stacks(tmp_path / "ours", SECOND, SECOND), stacks(tmp_path / "main", FIRST, FIRST),
                          ledger.entries())
    assert [m.stack for m in pins.moves] == ["prod"]
    assert [k.message() for k in pins.kept] == [(
        f"stacks/Pulumi.staging.yaml on main keeps {FIRST}: this run's STAGING pin {SECOND} is not what STAGING's "
        f"last deploy in the ledger left ({LATER})")]


def test_no_pin_moves_when_mains_pins_are_this_runs(tmp_path: Path) -> None:
    pins = pins_onto_main(stacks(tmp_path / "ours", FIRST, FIRST), stacks(tmp_path / "main", FIRST, FIRST), [])
    assert pins.moves == () and pins.kept == ()


def test_a_pin_written_twice_on_main_is_refused_for_a_human(tmp_path: Path) -> None:
    mains = stacks(tmp_path / "main", FIRST, FIRST)
    twice = StackFile(mains["prod"].path, mains["prod"].text + f"# was {FIRST}\n", FIRST)
    with pytest.raises(PinNotMovable, match=rf"cannot move main's prod pin '{FIRST}' to '{SECOND}' \(not one pinned "
                                            r"line\); prod runs .*: pin it on main by hand"):
        pins_onto_main(stacks(tmp_path / "ours", FIRST, SECOND), {**mains, "prod": twice}, [])


def keyed_staging_deploys(home: Path, signed: str, unsigned: str) -> Ledger:
    """STAGING's deploy of `signed` recorded under the ledger key (#1), then one of `unsigned` without it
    (#2), as goldgate run without the key, or a forger who can push to the ledger branch, would write it."""
    ledger = Ledger(home, key=KEY)
    staging_deploy(ledger, signed)
    staging_deploy(Ledger(home), unsigned)
    return ledger


UNSIGNED_DEPLOY = (r"^ledger #2 \(deploy\) carries no MAC: .*; STAGING's pin on main follows its last deploy "
                   r"recorded under the ledger key instead \(ledger #1, which left {}\)$")


def warned_of_deploy_2(warnings: Sequence[str], left: str) -> bool:
    return len(warnings) == 1 and re.match(UNSIGNED_DEPLOY.format(re.escape(left)), warnings[0]) is not None


def test_under_the_ledger_key_an_unsigned_staging_deploy_does_not_put_its_pin_on_main(tmp_path: Path) -> None:
    # Before: the MAC-less deploy of SECOND was STAGING's last, and this run's STAGING pin went onto main.
    ledger = keyed_staging_deploys(tmp_path / "home", signed=FIRST, unsigned=SECOND)
    pins = pins_onto_main(stacks(tmp_path / "ours", SECOND, SECOND), stacks(tmp_path / "main", LATER, FIRST),
                          ledger.entries())
    assert [m.stack for m in pins.moves] == ["prod"]
    assert [(k.kept, k.ours, k.runs) for k in pins.kept] == [(LATER, SECOND, FIRST)]
    assert warned_of_deploy_2(pins.warnings, FIRST)


def test_under_the_ledger_key_an_unsigned_staging_deploy_does_not_keep_mains_pin(tmp_path: Path) -> None:
    # Before: the MAC-less deploy of LATER was STAGING's last, and main kept its STAGING pin though STAGING's
    # last authenticated deploy left this run's.
    ledger = keyed_staging_deploys(tmp_path / "home", signed=SECOND, unsigned=LATER)
    pins = pins_onto_main(stacks(tmp_path / "ours", SECOND, SECOND), stacks(tmp_path / "main", FIRST, FIRST),
                          ledger.entries())
    assert [(m.stack, m.after) for m in pins.moves] == [("staging", SECOND), ("prod", SECOND)]
    assert pins.kept == () and warned_of_deploy_2(pins.warnings, SECOND)


def test_without_the_ledger_key_every_staging_deploy_counts_and_none_is_warned_of(tmp_path: Path) -> None:
    keyed_staging_deploys(tmp_path / "home", signed=FIRST, unsigned=SECOND)
    pins = pins_onto_main(stacks(tmp_path / "ours", SECOND, SECOND), stacks(tmp_path / "main", FIRST, FIRST),
                          Ledger(tmp_path / "home").entries())
    assert [m.stack for m in pins.moves] == ["staging", "prod"] and pins.warnings == ()


# --- the commands ----------------------------------------------------------------------------------------------

def error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_check_prod_file_prints_the_decision(capsys: pytest.CaptureFixture, second: SecondPush) -> None:
    code, out, err = invoke(capsys, "check-prod-file", "--main-file", str(second.mains), "--stack-file",
                         str(second.ours), "--report", str(second.report), "--home", str(second.home), "--json")
    assert (code, err) == (0, "")
    decided = json.loads(out)
    assert (decided["taken_from_main"], decided["ours"], decided["mains"]) == (True, BEFORE, FIRST)


@pytest.mark.parametrize(("text", "says"), [
    (None, "does not exist"),
    ("config: [unclosed\n", "is not valid YAML at line"),
    ("- a list\n", "expected `config: goldgate:spec: {...}`"),
    ("config:\n  goldgate:other: 1\n", "expected `config: goldgate:spec: {...}`"),
    ("config:\n  goldgate:spec:\n    image: a\n    image: b\n", "duplicate key"),
    ("\udcff", "is not UTF-8 text"),
], ids=["missing", "not-yaml", "a-list", "no-spec", "pin-twice", "not-utf8"])
def test_check_prod_file_refuses_a_main_file_that_is_not_a_stack_file_in_one_line(
        capsys: pytest.CaptureFixture, second: SecondPush, tmp_path: Path, text: str | None, says: str) -> None:
    bad = tmp_path / "bad.yaml"
    if text is not None:
        bad.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, out, err = invoke(capsys, "check-prod-file", "--main-file", str(bad), "--stack-file", str(second.ours),
                         "--report", str(second.report), "--home", str(second.home))
    assert code == 1 and out == ""
    line = error_line(err)
    assert line.startswith("goldgate: error: ") and says in line and str(bad) in line


def test_check_prod_file_over_an_empty_ledger_refuses_in_one_line(capsys: pytest.CaptureFixture,
                                                                   second: SecondPush, tmp_path: Path) -> None:
    code, out, err = invoke(capsys, "check-prod-file", "--main-file", str(second.mains), "--stack-file",
                         str(second.ours), "--report", str(second.report), "--home", str(tmp_path / "empty"))
    assert code == 1 and out == ""
    assert "no golden run in the ledger wrote" in error_line(err)


def test_check_prod_file_over_a_tampered_ledger_refuses_in_one_line(capsys: pytest.CaptureFixture,
                                                                    second: SecondPush) -> None:
    ledger = second.home / "ledger.jsonl"
    ledger.write_text(ledger.read_text().replace(FIRST, LATER, 1))
    code, _, err = invoke(capsys, "check-prod-file", "--main-file", str(second.mains), "--stack-file", str(second.ours),
                       "--report", str(second.report), "--home", str(second.home))
    assert code == 1 and "hash mismatch" in error_line(err)


def test_check_prod_file_without_its_main_file_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    code, _, err = invoke(capsys, "check-prod-file")
    assert code == 2 and "--main-file" in err


def pins_argv(tmp_path: Path, home: Path) -> list[str]:
    return ["pins-onto-main", "--main-dir", str(tmp_path / "main"), "--stacks-dir", str(tmp_path / "ours" / "stacks"),
            "--home", str(home)]


def test_pins_onto_main_rewrites_only_the_pin_lines_of_mains_files(capsys: pytest.CaptureFixture,
                                                                   tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, SECOND)
    stacks(tmp_path / "ours" / "stacks", SECOND, SECOND)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST)
    code, out, err = invoke(capsys, *pins_argv(tmp_path, ledger.path.parent))
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"staging: {FIRST} -> {SECOND}", f"prod: {FIRST} -> {SECOND}"]
    for stack in ("staging", "prod"):
        assert (tmp_path / "main" / "stacks" / f"Pulumi.{stack}.yaml").read_text() == stack_text(stack, SECOND)


def test_pins_onto_main_keeps_a_files_crlf_line_ends(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    # Before (the workflow's inline Python: read_text, write_text), a stack file committed with CRLF line ends came
    # back with LF ones: the pin commit rewrote every line of it, not the pin's.
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, FIRST)
    stacks(tmp_path / "ours" / "stacks", FIRST, SECOND)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST, newline="\r\n")
    code, _, err = invoke(capsys, *pins_argv(tmp_path, ledger.path.parent))
    assert code == 0, err
    written = (tmp_path / "main" / "stacks" / "Pulumi.prod.yaml").read_bytes()
    assert written == stack_text("prod", SECOND).replace("\n", "\r\n").encode("utf-8")


def test_pins_onto_main_prints_a_warning_line_for_a_staging_pin_it_keeps(capsys: pytest.CaptureFixture,
                                                                         tmp_path: Path) -> None:
    stacks(tmp_path / "ours" / "stacks", SECOND, FIRST)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST)
    code, out, _ = invoke(capsys, *pins_argv(tmp_path, tmp_path / "empty"))
    assert code == 0
    assert out.startswith(f"warning: stacks/Pulumi.staging.yaml on main keeps {FIRST}: ")
    assert (tmp_path / "main" / "stacks" / "Pulumi.staging.yaml").read_text() == stack_text("staging", FIRST)


def test_pins_onto_main_under_the_ledger_key_names_the_unsigned_deploy_it_left_out(
        capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = keyed_staging_deploys(tmp_path / "home", signed=FIRST, unsigned=SECOND)
    stacks(tmp_path / "ours" / "stacks", SECOND, FIRST)
    stacks(tmp_path / "main" / "stacks", LATER, FIRST)
    monkeypatch.setenv("GOLDGATE_LEDGER_KEY", KEY.decode())
    code, out, err = invoke(capsys, *pins_argv(tmp_path, ledger.path.parent), "--json")
    assert (code, err) == (0, "")
    decided = json.loads(out)
    assert decided["moved"] == [] and [k["stack_runs"] for k in decided["kept"]] == [FIRST]
    assert warned_of_deploy_2(decided["warnings"], FIRST)
    assert (tmp_path / "main" / "stacks" / "Pulumi.staging.yaml").read_text() == stack_text("staging", LATER)


def test_pins_onto_main_writes_nothing_when_one_pin_cannot_move(capsys: pytest.CaptureFixture,
                                                                tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, SECOND)
    stacks(tmp_path / "ours" / "stacks", SECOND, SECOND)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST)
    prod = tmp_path / "main" / "stacks" / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text() + f"# was {FIRST}\n")
    before = {p.name: p.read_bytes() for p in (tmp_path / "main" / "stacks").iterdir()}
    code, out, err = invoke(capsys, *pins_argv(tmp_path, ledger.path.parent))
    assert code == 1 and out == ""
    assert "pin it on main by hand" in error_line(err)
    assert {p.name: p.read_bytes() for p in (tmp_path / "main" / "stacks").iterdir()} == before


def test_pins_onto_main_for_a_rollback_moves_prods_pin_alone(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    # A rollback run's STAGING file is its commit's: STAGING's pin on main (set since, or by hand) is not the
    # rollback's to move back, nor to warn about. Before, pins-onto-main always took both stacks.
    ledger = Ledger(tmp_path / "home")
    staging_deploy(ledger, FIRST)
    stacks(tmp_path / "ours" / "stacks", FIRST, FIRST)
    stacks(tmp_path / "main" / "stacks", LATER, SECOND)
    code, out, err = invoke(capsys, *pins_argv(tmp_path, ledger.path.parent), "--stack", "prod")
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"prod: {SECOND} -> {FIRST}"]
    assert (tmp_path / "main" / "stacks" / "Pulumi.staging.yaml").read_text() == stack_text("staging", LATER)
    assert (tmp_path / "main" / "stacks" / "Pulumi.prod.yaml").read_text() == stack_text("prod", FIRST)


def test_pins_onto_main_for_prod_alone_needs_no_staging_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    stacks(tmp_path / "ours" / "stacks", FIRST, SECOND)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST)
    (tmp_path / "ours" / "stacks" / "Pulumi.staging.yaml").unlink()
    code, out, err = invoke(capsys, *pins_argv(tmp_path, tmp_path / "home"), "--stack", "prod", "--json")
    assert (code, err) == (0, "")
    assert [(m["stack"], m["after"]) for m in json.loads(out)["moved"]] == [("prod", SECOND)]


def test_pins_onto_main_refuses_a_stack_it_does_not_know(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = invoke(capsys, *pins_argv(tmp_path, tmp_path / "home"), "--stack", "production")
    assert code == 2 and "argument --stack: invalid choice: 'production'" in err


@pytest.mark.parametrize("broken", ["main-dir", "our-file"])
def test_pins_onto_main_names_a_missing_stack_file_in_one_line(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                               broken: str) -> None:
    stacks(tmp_path / "ours" / "stacks", SECOND, SECOND)
    stacks(tmp_path / "main" / "stacks", FIRST, FIRST)
    gone = (tmp_path / "main" / "stacks" / "Pulumi.staging.yaml" if broken == "main-dir"
            else tmp_path / "ours" / "stacks" / "Pulumi.prod.yaml")
    gone.unlink()
    code, _, err = invoke(capsys, *pins_argv(tmp_path, tmp_path / "home"))
    assert code == 1
    assert f"stack file {gone} does not exist" in error_line(err)


def test_read_stack_file_refuses_a_pulumi_file_of_another_program(tmp_path: Path) -> None:
    other = write(tmp_path / "Pulumi.prod.yaml", "config:\n  aws:region: eu-west-1\n")
    with pytest.raises(SpecError, match="expected `config: goldgate:spec"):
        read_stack_file(other)


def test_a_prod_file_checked_out_with_crlf_line_ends_is_still_mains(tmp_path: Path) -> None:
    ours = write(tmp_path / "ours.yaml", stack_text("prod", FIRST).replace("\n", "\r\n"))
    mains = write(tmp_path / "mains.yaml", stack_text("prod", FIRST))
    assert check_prod_file(read_stack_file(ours), read_stack_file(mains), [], None).promotion_seq is None


def test_the_text_output_of_pins_onto_main_shows_its_warnings_for_ci() -> None:
    from goldgate.commands.release import _render_pins

    text = _render_pins({"warnings": ["ledger #2 (deploy) carries no MAC"], "kept": [], "moved": []})
    assert text.splitlines()[0] == "warning: ledger #2 (deploy) carries no MAC"  # release.yml makes it ::warning::
