"""What may open the gate and what a promotion does when PROD misbehaves part-way: only evidence from an
ordinary golden run for exactly the release PROD will run, and a failure of any kind after the pin ends in a
rollback and an outcome in the ledger. Stacks are a small in-process target over the stand-in job API."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from ci_policy import require
from release_support import TOKEN, StandInApi, golden_suite, standin_api
from test_cli_errors import one_error_line, run
from test_gate_and_lock import Stacks, failed

from goldgate.errors import GoldgateError
from goldgate.release.cases import load_cases
from goldgate.release.deployers.base import DeployResult, Progress
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.history import last_verified
from goldgate.release.ledger import Ledger
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden
from goldgate.spec import Thresholds

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64
C = "local/worker@sha256:" + "c" * 64


class Target(Stacks):
    """Two stacks behind one stand-in API: a deploy pins the image and the API's jobs then report it.

    `crash` names images whose PROD deploy dies after the pin with an error that is not goldgate's own (the
    stack host gone, a full disk); `ignore` names images a deploy claims to apply but does not."""

    def __init__(self, api: StandInApi, pins: dict[str, str], workflow_versions: dict[str, str] | None = None,
                 crash: set[str] | None = None, ignore: set[str] | None = None) -> None:
        super().__init__(api.url, pins)
        self.api, self.crash, self.ignore = api, crash or set(), ignore or set()
        self.refuse: set[str] = set()   # images a PROD deploy refuses before touching anything
        self.workflow_versions = workflow_versions or {}

    def spec(self, stack: str) -> SimpleNamespace:
        return SimpleNamespace(thresholds=Thresholds(), role=stack,
                               workflow_version=self.workflow_versions.get(stack, "2026.11.0"))

    def deploy(self, stack: str, image: str, progress: Progress) -> DeployResult:
        before = self.pins.get(stack)
        if stack == "prod" and image in self.refuse:
            raise GoldgateError(f"pulumi up of prod failed before any change ({image})")
        if image not in self.ignore:
            self.pins[stack] = image
            self.api.image_tag = image
        if stack == "prod" and image in self.crash:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return DeployResult(stack, self.target, before, self.pins.get(stack))


def _staging_passes(target: Target, ledger: Ledger, paths: GoldenPaths, image: str) -> None:
    target.deploy("staging", image, lambda _m: None)
    assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed


def _released(target: Target, ledger: Ledger, home: Path, paths: GoldenPaths, *images: str) -> None:
    """Each of `images` in turn qualified on STAGING and promoted to PROD: a ledger of verified releases."""
    for image in images:
        _staging_passes(target, ledger, paths, image)
        assert promote(target, ledger, home, paths=paths).ok


def test_a_golden_run_that_rewrote_the_references_does_not_open_the_gate(tmp_path: Path, paths: GoldenPaths) -> None:
    # --update-references compares each render with itself: its report passes whatever the image draws.
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        rewrite = run_golden(target, "staging", ledger, paths=paths, update_references=True, poll_s=0.01)
    assert rewrite.passed and rewrite.report["references_updated"] is True
    decision = check_gate(target, ledger, rewrite.path)[0]
    assert not decision.passed and "report_references" in failed(decision)
    with pytest.raises(GoldgateError, match="report_references: .*--update-references"):
        promote(target, ledger, tmp_path / "home", report_path=rewrite.path, paths=paths)
    assert "prod" not in target.pins


def test_a_report_for_another_workflow_version_than_prod_declares_does_not_open_the_gate(
        tmp_path: Path, paths: GoldenPaths) -> None:
    ledger = Ledger(tmp_path / "home")
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        _staging_passes(target, ledger, paths, A)
        latest = paths.reports_dir / "latest.json"
        target.workflow_versions["prod"] = "2026.12.0"
        with pytest.raises(GoldgateError, match="report_workflow_version: report is for workflow version "
                                                "'2026.11.0', but prod declares '2026.12.0'"):
            promote(target, ledger, tmp_path / "home", paths=paths)
        assert failed(check_gate(target, ledger, latest, prod="prod")[0]) == ["report_workflow_version"]
        target.workflow_versions["staging"] = "2026.12.0"  # STAGING moved on after the run: still the old report
        assert failed(check_gate(target, ledger, latest, prod="prod")[0]) == ["report_workflow_version"]
        with pytest.raises(GoldgateError, match="report_workflow_version: report is for workflow version "
                                                "'2026.11.0', but staging and prod declare '2026.12.0'"):
            promote(target, ledger, tmp_path / "home", paths=paths)
    assert "prod" not in target.pins


def test_a_prod_deploy_that_dies_with_a_foreign_error_is_rolled_back_and_recorded(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {}, crash={B})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and "No such process" in (outcome.error or "")
    assert outcome.rollback is not None and outcome.rollback.ok and outcome.prod_image == A
    assert target.pins["prod"] == A
    last = ledger.entries()[-1]
    assert (last.kind, last.get("phase"), last.get("outcome"), last.get("after")) == \
        ("promotion", "outcome", "deploy_failed", A)
    assert last_verified(ledger.entries()).image == A


def test_a_deploy_that_leaves_prod_on_the_old_image_is_not_recorded_as_verified(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    # The smoke cases would pass on what PROD still runs; they vouch for that image, not the candidate.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        target.ignore.add(B)
        api.image_tag = A                     # PROD's workers still run A
        outcome = promote(target, ledger, home, paths=paths)
    assert not outcome.ok and outcome.outcome == "deploy_failed"
    assert f"prod runs {A}" in (outcome.error or "")
    assert [r for r in ledger.entries() if r.get("prod_image") == B] == []


def test_a_rollback_that_never_left_prod_does_not_disqualify_what_prod_still_runs(tmp_path: Path,
                                                                                  paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {}, crash={C})
        _released(target, ledger, home, paths, A, B)
        target.refuse.add(A)
        with pytest.raises(GoldgateError, match="rollback of prod to .* deploy failed"):
            rollback(target, ledger, home, paths=paths)
        assert target.pins["prod"] == B                  # the failed rollback changed nothing
        target.refuse.clear()
        _staging_passes(target, ledger, paths, C)
        outcome = promote(target, ledger, home, paths=paths)
    assert outcome.outcome == "deploy_failed" and outcome.rollback is not None
    assert outcome.rollback.image == B and target.pins["prod"] == B


def test_a_case_whose_job_does_not_say_which_image_ran_it_fails(tmp_path: Path) -> None:
    golden_suite(tmp_path)
    cases = load_cases(tmp_path / "cases", smoke_only=True)
    target = SuiteTarget(stack="prod", target="local", image=A, workflow_version="2026.11.0", thresholds=Thresholds())
    with standin_api(StandInApi(image_tag=None)) as api:  # type: ignore[arg-type]
        report = run_suite(cases, ApiAccess(api.url, TOKEN), target, references_dir=tmp_path / "references",
                           poll_s=0.01)
    assert report["passed"] is False
    assert any("worker_image: the job did not say which image ran it" in f for f in report["failures"])


def test_rollback_to_an_empty_name_is_refused_not_taken_as_the_default(tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        with pytest.raises(GoldgateError, match="--to is empty"):
            rollback(target, ledger, home, to="", paths=paths)
    assert target.pins["prod"] == B


def test_a_rollback_with_no_previous_release_names_the_verified_one_history_lists(tmp_path: Path,
                                                                                   paths: GoldenPaths) -> None:
    # B rolled back to A, then `--to B` back: A is verified in `goldgate history` but is no longer "the
    # previous release". The error must name it and the command that pins it, not send the operator away.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        assert rollback(target, ledger, home, paths=paths).image == A
        assert rollback(target, ledger, home, to=B, paths=paths).image == B
        with pytest.raises(GoldgateError) as refused:
            rollback(target, ledger, home, paths=paths)
        assert target.pins["prod"] == B
        assert f"the newest, {A}, can be pinned on purpose with `goldgate rollback --to {A}`" in str(refused.value)
        assert rollback(target, ledger, home, to=A, paths=paths).ok  # the command it gives works
    assert target.pins["prod"] == A


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_a_report_path_that_never_ends_is_refused_in_one_line(tmp_path: Path) -> None:
    require(Path("/dev/zero").exists(), "/dev/zero")
    # A device or pipe has no size to stat: the read itself must stop at the limit.
    proc = subprocess.run([sys.executable, "-m", "goldgate.cli", "promote", "--check", "--report", "/dev/zero",
                           "--home", str(tmp_path)], capture_output=True, text=True, check=False,
                          preexec_fn=_limit_memory, env={**os.environ, "GOLDGATE_TARGET": "local"})
    assert proc.returncode == 1
    assert "/dev/zero is larger than" in one_error_line(proc.stderr)


def test_promote_check_json_names_the_new_conditions(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"schema": "goldgate.golden-report.v1", "references_updated": True}))
    code, out, _ = run(capsys, tmp_path, "promote", "--check", "--json", "--report", str(report))
    names = {c["name"] for c in json.loads(out)["conditions"] if not c["passed"]}
    assert code == 1 and {"report_references", "report_workflow_version"} <= names


def test_a_refused_promotion_still_prints_its_gate_as_json(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    # CI keeps `goldgate promote --json` as the promotion's evidence; a refusal is evidence too.
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"schema": "goldgate.golden-report.v1", "stack": "staging", "image": A}))
    code, out, err = run(capsys, tmp_path, "promote", "--json", "--report", str(report))
    assert code == 1 and "promotion refused: " in one_error_line(err)
    doc = json.loads(out)
    assert doc["ok"] is False and doc["outcome"] == "refused" and doc["message"].startswith("promotion refused: ")
    assert "report_recorded" in {c["name"] for c in doc["gate"]["conditions"] if not c["passed"]}


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "soon"])
def test_demo_refuses_a_timeout_that_is_not_a_positive_number_of_seconds(capsys: pytest.CaptureFixture,
                                                                         tmp_path: Path, value: str) -> None:
    # NaN never compares greater than the clock: a stuck job would be waited on forever. The state dir is a
    # file, so a demo that did start fails at once instead of bringing a stack up.
    home = tmp_path / "home"
    home.write_text("not a state dir")
    with pytest.raises(SystemExit) as exc:
        run(capsys, home, "demo", "--timeout", value)
    assert exc.value.code == 2 and "argument --timeout" in capsys.readouterr().err


def test_a_report_path_that_is_a_pipe_nobody_writes_is_refused_not_waited_on(tmp_path: Path) -> None:
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    from goldgate.release.report import ReportError, read_report

    fifo = tmp_path / "latest.json"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_report(fifo)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # blocked in open(): give it a writer so the thread ends, then fail
        with fifo.open("wb"):
            pass
        reader.join(10)
        pytest.fail("reading a pipe with no writer waited for one")
    assert isinstance(outcome[0], ReportError) and "not a readable golden report" in str(outcome[0])


def test_a_report_piped_in_by_a_writer_is_read_whole(tmp_path: Path) -> None:
    # `goldgate promote --check --report <(curl ...)`: a pipe whose writer is still writing.
    report = {"schema": "goldgate.golden-report.v1", "passed": True}
    reader = ("import sys; from pathlib import Path; from goldgate.release.report import read_report; "
              "print(read_report(Path(sys.argv[1]))[0])")
    script = f"{sys.executable} -c '{reader}' <(sleep 0.5; echo '{json.dumps(report)}')"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "'passed': True" in proc.stdout
