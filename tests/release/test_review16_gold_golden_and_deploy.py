"""A golden run and a deploy of the same stack at once, on a real local stack (review 16).

A golden run started while `goldgate deploy` rolled out bound to the new pin while the stack still served the old
image: every case failed "job ran on <old>", and the report `promote` gates on (latest.json) failed an image no case
ran on. A deploy started during a golden run changed the image under the cases still to come, failing them and the
report. A golden run of PROD during a promotion wrote a smoke verdict on PROD's image to the ledger, which the gate
then holds against it. Now a golden run and a deploy of a stack exclude each other (a flock per stack, taken without
waiting, refused in one line naming the holder's command and pid), a golden run refuses a stack that does not serve
its pin, and a golden run of PROD holds the release lock as a promotion or rollback does. A killed holder leaves no
lock behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from release_support import invoke

from goldgate.commands.local import WORKER_SOURCE, ensure_up
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.cases import GOLDEN_DIR, load_cases
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger
from goldgate.release.verification import GoldenPaths, run_golden

# Two of the shipped cases (flux-fox is a smoke case), and the first case of any other shipped workflow (a run must
# cover each workflow the stack serves, a team's added one too), run one at a time.
CASES = ("flux-fox", "sdxl-defaults")
CASES += tuple(sorted({c.workflow: c.id for c in reversed(load_cases())
                       if c.workflow not in ("flux-schnell-lora", "sdxl-txt2img")}.values()))


@dataclass
class Stack:
    home: Path
    platform: LocalPlatform
    deployer: LocalDeployer
    ledger: Ledger
    paths: GoldenPaths
    first: str      # the image `goldgate up` deployed
    variant: str    # a second image of the same worker

    def golden_args(self) -> list[str]:
        return ["--home", str(self.home), "--cases-dir", str(self.paths.cases_dir), "--references-dir",
                str(self.paths.references_dir), "--reports-dir", str(self.paths.reports_dir), "--concurrency", "1"]

    def serving(self, image: str) -> None:
        """Start a test from STAGING pinned to, and serving, `image`, with no report yet."""
        if self.platform.status("staging").image != image or self.platform.pinned_image("staging") != image:
            self.platform.deploy("staging", image)
        shutil.rmtree(self.paths.reports_dir, ignore_errors=True)

    def goldens(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.ledger.entries() if e.kind == "golden"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("gold-home")
    suite = tmp_path_factory.mktemp("gold-suite")
    for sub in ("cases", "references"):
        (suite / sub).mkdir()
    for case in CASES:
        shutil.copy(GOLDEN_DIR / "cases" / f"{case}.yaml", suite / "cases")
        shutil.copy(GOLDEN_DIR / "references" / "local" / f"{case}.png", suite / "references")
    platform = LocalPlatform(home)
    try:
        first = ensure_up(platform, "staging").image
        source = tmp_path_factory.mktemp("gold-variant") / "worker"
        shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
        with (source / "__init__.py").open("a", encoding="utf-8") as code:   # a file docker is sent: a new image
            code.write("\n# a change to the worker tree makes a new image\n")
        variant = image_store.build_local_image(source, home)
        assert first and variant != first
        yield Stack(home, platform, LocalDeployer(home, platform), Ledger(home),
                    GoldenPaths(cases_dir=suite / "cases", references_dir=suite / "references",
                                reports_dir=suite / "reports"), first, variant)
    finally:
        for name in ("staging", "prod"):
            platform.down(name)


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """`fn` run in a thread of its own; the list gets what it returned or raised."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _wait(condition: Callable[[], object], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def _jobs(stack: Stack, name: str = "staging") -> int:
    with sqlite3.connect(stack.platform.db_path(name)) as db:
        return int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])


def test_a_deploy_during_a_golden_run_is_refused_and_the_report_vouches_for_the_image_its_cases_ran_on(
        stack: Stack, capsys: pytest.CaptureFixture) -> None:
    stack.serving(stack.first)
    first_case_done, go_on = threading.Event(), threading.Event()

    def progress(message: str) -> None:
        if ": pass in" in message or ": FAIL in" in message:   # the run holds here, one case done, one to come
            first_case_done.set()
            go_on.wait(300)

    thread, ran = _in_thread(lambda: run_golden(stack.deployer, "staging", stack.ledger, paths=stack.paths,
                                                progress=progress, concurrency=1, poll_s=0.1))
    try:
        assert first_case_done.wait(300), ran
        code, _, err = invoke(capsys, "deploy", "staging", "--image", stack.variant, "--home", str(stack.home))
        # A second golden run meanwhile would share the workers (and skew both runs' latencies) and race the first
        # to write latest.json: refused too.
        second = invoke(capsys, "golden", "staging", *stack.golden_args())
    finally:
        go_on.set()
        thread.join(300)
    assert second[0] == 1, second
    assert second[2].strip().splitlines()[-1].startswith(
        f"goldgate: error: a full golden run on staging holds staging (pid {os.getpid()}, "), second
    assert "one golden run of a stack at a time" in second[2] and "nothing was run" in second[2]
    refusal = err.strip().splitlines()[-1]
    assert code == 1, err
    assert refusal.startswith(f"goldgate: error: a full golden run on staging holds staging (pid {os.getpid()}, ")
    assert "a deploy now would change the image under its cases; nothing was pinned" in refusal
    assert stack.platform.pinned_image("staging") == stack.first
    assert not [e for e in stack.ledger.entries() if e.kind == "deploy" and e.get("image") == stack.variant]
    run = ran[0]
    assert not isinstance(run, BaseException), run
    assert run.passed, run.report["failures"]
    assert run.report["image"] == stack.first
    assert {case["worker_image_tag"] for case in run.report["cases"]} == {stack.first}
    # Once the run is over, the deploy goes through.
    code, _, err = invoke(capsys, "deploy", "staging", "--image", stack.variant, "--home", str(stack.home))
    assert code == 0, err
    assert stack.platform.status("staging").image == stack.variant


def test_a_golden_run_during_a_deploy_is_refused_before_any_case_runs(stack: Stack,
                                                                       capsys: pytest.CaptureFixture) -> None:
    stack.serving(stack.first)
    before, jobs = stack.goldens(), _jobs(stack)
    host = stack.platform.require_running("staging")["pid"]
    os.kill(host, signal.SIGSTOP)   # alive: the deploy pins and then waits for it to take the pin
    try:
        deploying, deployed = _in_thread(lambda: stack.deployer.deploy("staging", stack.variant, lambda _m: None))
        assert _wait(lambda: stack.platform.pinned_image("staging") == stack.variant, 60), deployed
        golden, said = _in_thread(lambda: invoke(capsys, "golden", "staging", *stack.golden_args()))
        golden.join(10)   # refused at once; before the fix it waits on the stopped host until it is let go
    finally:
        os.kill(host, signal.SIGCONT)
    golden.join(300)
    deploying.join(300)
    code, _, err = said[0]
    assert code == 1, err
    refusal = err.strip().splitlines()[-1]
    assert refusal.startswith(f"goldgate: error: a deploy of {stack.variant} to staging holds staging "
                              f"(pid {os.getpid()}, "), refusal
    assert "a golden run now would bind to an image its stack does not serve yet; nothing was run" in refusal
    assert not stack.paths.reports_dir.exists()   # no report, so latest.json says nothing of an untested image
    assert stack.goldens() == before and _jobs(stack) == jobs
    assert not isinstance(deployed[0], BaseException), deployed
    assert stack.platform.status("staging").image == stack.variant


def test_a_golden_run_refuses_a_pin_its_stack_does_not_serve(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    """A deploy killed after it moved the pin and before its host took it leaves the stack serving the old image:
    the golden run says so instead of failing every case on it and writing a failed report for the pin."""
    stack.serving(stack.first)
    before, jobs = stack.goldens(), _jobs(stack)
    StackDir(stack.home, "staging").pin(stack.variant, reason="deploy")   # as a deploy killed right after it
    code, _, err = invoke(capsys, "golden", "staging", *stack.golden_args())
    refusal = err.strip().splitlines()[-1]
    assert code == 1, err
    assert refusal == (f"goldgate: error: not running the golden tests on staging: it is pinned to {stack.variant} "
                       f"but serves {stack.first}, so its cases would run on that; `goldgate status staging` says why "
                       "and how to settle it; nothing was run")
    code, out, _ = invoke(capsys, "status", "staging", "--json", "--home", str(stack.home))
    assert f"`goldgate deploy staging --image {stack.variant}` applies the pin" in json.loads(out)["pin_not_served"]
    assert not stack.paths.reports_dir.exists()
    assert stack.goldens() == before and _jobs(stack) == jobs
    # The advice works: the deploy applies the pin, and the golden run then vouches for it.
    assert invoke(capsys, "deploy", "staging", "--image", stack.variant, "--home", str(stack.home))[0] == 0
    code, out, err = invoke(capsys, "golden", "staging", "--json", *stack.golden_args())
    assert code == 0, err
    report = json.loads(out)
    assert report["passed"] and report["image"] == stack.variant
    assert json.loads((stack.paths.reports_dir / "latest.json").read_text())["image"] == stack.variant


def test_a_killed_golden_run_holds_nothing(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    stack.serving(stack.first)
    jobs = _jobs(stack)
    runner = subprocess.Popen([sys.executable, "-m", "goldgate.cli", "golden", "staging", *stack.golden_args()],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: _jobs(stack) > jobs or runner.poll() is not None, 120), "the golden run sent no job"
        runner.send_signal(signal.SIGSTOP)   # held mid-run, its first case sent
        code, _, err = invoke(capsys, "deploy", "staging", "--image", stack.variant, "--home", str(stack.home))
        assert code == 1, err
        assert f"a full golden run on staging holds staging (pid {runner.pid}, " in err
        runner.kill()
        runner.wait(60)
        code, _, err = invoke(capsys, "deploy", "staging", "--image", stack.variant, "--home", str(stack.home))
        assert code == 0, err
        assert stack.platform.status("staging").image == stack.variant
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(60)


_HOLD = ("import sys, time; from pathlib import Path; from goldgate.release.lock import ReleaseLock\n"
         "lock = ReleaseLock(Path(sys.argv[1]), sys.argv[2]).__enter__()\n"
         "print('held', flush=True); time.sleep(600)\n")


def _promotion_holding(home: Path) -> subprocess.Popen:
    """A process holding the release lock as a promotion holds it (its purpose, as `promote` names it)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(home), "promote staging -> prod"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = holder.stdout.readline() if holder.stdout else ""
    if line.strip() != "held":
        holder.kill()
        pytest.fail(f"the lock holder did not start: {holder.communicate(timeout=60)[1].strip()[-500:]}")
    return holder


def test_a_golden_run_of_prod_waits_for_no_promotion_and_leaves_no_verdict(stack: Stack,
                                                                         capsys: pytest.CaptureFixture) -> None:
    entries = len(stack.ledger.entries())
    holder = _promotion_holding(stack.home)
    try:
        code, _, err = invoke(capsys, "golden", "prod", "--smoke", *stack.golden_args())
    finally:
        holder.kill()
        holder.wait(60)
    assert code == 1, err
    refusal = err.strip().splitlines()[-1]
    assert refusal.startswith(f"goldgate: error: a promotion or rollback is running (promote staging -> prod, pid "
                              f"{holder.pid}, "), refusal
    assert "run the golden tests again" in refusal
    assert len(stack.ledger.entries()) == entries   # no smoke verdict on PROD's image
    # Its holder killed, the lock is free: the run goes on to find PROD (which this test never started) down.
    code, _, err = invoke(capsys, "golden", "prod", "--smoke", *stack.golden_args())
    assert code == 1 and "stack prod is not up" in err, err


def test_a_promotion_during_a_golden_run_of_prod_is_refused_before_it_records_anything(
        stack: Stack, capsys: pytest.CaptureFixture) -> None:
    prod = StackDir(stack.home, "prod")
    if stack.platform.pinned_image("prod") is None:
        prod.pin(stack.first, reason="test: PROD's first release")
    stack.platform.up("prod")
    jobs = _jobs(stack, "prod")
    runner = subprocess.Popen([sys.executable, "-m", "goldgate.cli", "golden", "prod", "--smoke",
                               *stack.golden_args()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    promote = ["promote", "--home", str(stack.home), "--cases-dir", str(stack.paths.cases_dir), "--references-dir",
               str(stack.paths.references_dir), "--reports-dir", str(stack.paths.reports_dir)]
    try:
        assert _wait(lambda: _jobs(stack, "prod") > jobs or runner.poll() is not None, 120), "no smoke job was sent"
        runner.send_signal(signal.SIGSTOP)   # held mid-run, its smoke case sent
        entries = len(stack.ledger.entries())
        code, _, err = invoke(capsys, *promote)
        assert code == 1, err
        refusal = err.strip().splitlines()[-1]
        assert refusal.startswith(f"goldgate: error: a golden run of PROD is running (golden prod, pid {runner.pid}, "
                                  "since "), refusal
        assert "`goldgate golden prod --smoke" in refusal
        assert "a PROD change now would move the image under its cases" in refusal
        assert len(stack.ledger.entries()) == entries   # refused before its intent: nothing to reconcile later
        runner.kill()
        runner.wait(60)
        # Its holder killed, the lock is free: the promotion goes on to its gate, which this test gives nothing to pass.
        code, _, err = invoke(capsys, *promote)
        assert code == 1 and "is running" not in err, err
        assert "promotion refused: " in err or "no golden report at " in err, err
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(60)
