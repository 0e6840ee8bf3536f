"""The release flow on the local target, end to end: real stacks (service, RunPod emulator with workers
running the real handler under the runpod SDK, ComfyUI emulator), real golden runs through the public
API, the CLI as a user runs it.

The tests share one state home and run in file order; each sets up the pins it starts from, so each also runs
alone (-k).
Candidates are real local images built from copies of images/worker: a harmless variant, one whose
handler fails every job, and one that fails only where STACK=prod (passes STAGING, fails PROD smoke).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.release.cases import load_cases
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.error_rate import from_api, from_sqlite
from goldgate.release.gate import PromotionRefused
from goldgate.release.history import interrupted
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.verification import GoldenPaths, run_golden

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "images" / "worker"
BROKEN = '''

# --- injected by tests/release: this candidate is broken on purpose -------------------------------
_real_run_job = run_job


def run_job(job, runtime):  # noqa: F811
    if {condition}:
        return {{"error": "candidate broken on purpose by the release tests"}}
    return _real_run_job(job, runtime)
'''


class Flow:
    """The shared home, golden paths and a CLI runner for one test module."""

    def __init__(self, home: Path, reports: Path, tmp: Path) -> None:
        self.home, self.reports, self.tmp = home, reports, tmp
        self._good: str | None = None
        self._variant: str | None = None
        self.platform = LocalPlatform(home)
        self.deployer = LocalDeployer(home, self.platform)
        self.ledger = Ledger(home)
        self.paths = GoldenPaths(reports_dir=reports)

    def cli(self, *argv: str) -> tuple[int, str]:
        golden = ("golden", "promote", "rollback", "release")
        extra = ["--reports-dir", str(self.reports)] if argv[0] in golden else []
        out_file = self.home / "cli-out.json"
        with open(out_file, "w") as out:
            saved = sys.stdout
            sys.stdout = out
            try:
                code = main([*argv, "--home", str(self.home), *extra])
            finally:
                sys.stdout = saved
        return code, out_file.read_text()

    def build(self, source: Path) -> str:
        code, out = self.cli("build", "--engine", "local", "--context", str(source), "--json")
        assert code == 0
        return json.loads(out)["image"]

    def candidate(self, tmp: Path, name: str, condition: str | None) -> Path:
        src = tmp / name
        shutil.copytree(WORKER, src, ignore=shutil.ignore_patterns("__pycache__"))
        with (src / "__init__.py").open("a", encoding="utf-8") as code:   # a file docker is sent: a new image
            code.write(f"\n# candidate {name}\n")
        if condition:
            with open(src / "handler.py", "a") as fh:
                fh.write(BROKEN.format(condition=condition))
        return src

    @property
    def good(self) -> str:
        """The first verified release, made once by `goldgate release`; each test may run alone."""
        if self._good is None:
            code, out = self.cli("release", "--engine", "local", "--json")
            assert code == 0, out
            self._good = json.loads(out)["image"]
        return self._good

    @property
    def variant(self) -> str:
        """A harmless second candidate, built once."""
        if self._variant is None:
            self._variant = self.build(self.candidate(self.tmp, "variant", None))
        return self._variant

    def prod_serves(self) -> str | None:
        """Run the smoke cases on PROD and return the image the jobs ran on."""
        run = run_golden(self.deployer, "prod", self.ledger, suite="smoke", paths=self.paths, poll_s=0.1)
        assert run.passed, run.report["failures"]
        return run.report["worker_image_tag"]


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    home = tmp_path_factory.mktemp("release-home")
    f = Flow(home, tmp_path_factory.mktemp("reports"), tmp_path_factory.mktemp("candidates"))
    yield f
    for stack in ("staging", "prod"):
        f.platform.down(stack)


def test_goldgate_release_promotes_a_passing_candidate_and_prod_serves_it(flow: Flow) -> None:
    code, out = flow.cli("release", "--engine", "local", "--json")
    summary = json.loads(out)
    assert code == 0, summary
    assert summary["golden"]["passed"] and summary["promotion"]["outcome"] == "promoted"
    image = summary["image"]
    assert flow.platform.pinned_image("staging") == image == flow.platform.pinned_image("prod")
    assert summary["prod_image"] == image
    assert flow.prod_serves() == image
    kinds = [(e.kind, e.get("phase"), e.get("outcome")) for e in flow.ledger.entries()]
    assert ("promotion", "outcome", "promoted") in kinds and ("build", None, None) in kinds
    flow._good = image
    # The cloud gate reads the error rate from the service's /api/metrics; it agrees with job_metrics.
    since = datetime.now(UTC) - timedelta(hours=1)
    access = flow.deployer.api_access("staging")
    via_api = from_api(access.api_url, access.token, since)
    via_db = from_sqlite(flow.platform.db_path("staging"), "staging", since)
    # One job per golden case, every one of them completed.
    assert (via_api.jobs, via_api.failed) == (via_db.jobs, via_db.failed) == (len(load_cases()), 0)


def test_a_candidate_that_fails_golden_is_never_promoted(flow: Flow) -> None:
    good = flow.good
    bad = flow.build(flow.candidate(flow.tmp, "broken", "True"))
    assert flow.cli("deploy", "staging", "--image", bad)[0] == 0
    code, out = flow.cli("golden", "staging", "--json")
    assert code == 1 and json.loads(out)["passed"] is False
    with pytest.raises(PromotionRefused, match="report_passed: the latest golden report did not pass"):
        promote(flow.deployer, flow.ledger, flow.home, paths=flow.paths)
    code, _ = flow.cli("promote")
    assert code == 1
    assert flow.platform.pinned_image("prod") == good
    assert flow.prod_serves() == good


def test_the_gate_refuses_a_report_for_another_digest_a_stale_one_and_a_failed_one(flow: Flow) -> None:
    good = flow.good
    variant = flow.variant
    assert flow.cli("deploy", "staging", "--image", good)[0] == 0
    assert flow.cli("golden", "staging")[0] == 0           # a passing report for `good`
    assert flow.cli("deploy", "staging", "--image", variant)[0] == 0
    with pytest.raises(PromotionRefused, match=f"report_digest: report is for {good}, but STAGING now runs {variant}"):
        promote(flow.deployer, flow.ledger, flow.home, paths=flow.paths)
    assert flow.cli("golden", "staging")[0] == 0           # now a passing report for `variant`
    later = datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(PromotionRefused, match=r"report_fresh: report finished \d+ s ago \(max 86400 s\)"):
        promote(flow.deployer, flow.ledger, flow.home, paths=flow.paths, now=later)
    report = json.loads((flow.reports / "latest.json").read_text())
    report["passed"], report["failures"] = False, ["sdxl-lighthouse: perceptual_hash: dHash distance 30"]
    failed = flow.reports / "failed.json"
    failed.write_text(json.dumps(report))
    with pytest.raises(PromotionRefused, match="report_passed: the latest golden report did not pass"):
        promote(flow.deployer, flow.ledger, flow.home, report_path=failed, paths=flow.paths)
    assert flow.platform.pinned_image("prod") == good
    refusals = [e for e in flow.ledger.entries() if e.kind == "promotion" and e.get("phase") == "refused"]
    assert len(refusals) >= 3


def test_a_prod_smoke_failure_rolls_back_automatically_to_the_last_verified_release(flow: Flow) -> None:
    good = flow.good
    prod_only = flow.build(flow.candidate(flow.tmp, "prod-only", "__import__('os').environ.get('STACK') == 'prod'"))
    assert flow.cli("deploy", "staging", "--image", prod_only)[0] == 0
    assert flow.cli("golden", "staging")[0] == 0           # fine on STAGING
    outcome = promote(flow.deployer, flow.ledger, flow.home, paths=flow.paths)
    assert outcome.outcome == "smoke_failed" and not outcome.ok
    assert outcome.rollback is not None and outcome.rollback.outcome == "rolled_back"
    assert outcome.rollback.image == good and outcome.prod_image == good
    assert "rolled back automatically to " + good in outcome.message()
    assert flow.platform.pinned_image("prod") == good
    assert flow.prod_serves() == good


def test_goldgate_rollback_restores_an_earlier_release(flow: Flow) -> None:
    good, variant = flow.good, flow.variant
    assert flow.cli("deploy", "staging", "--image", variant)[0] == 0
    assert flow.cli("golden", "staging")[0] == 0
    code, out = flow.cli("promote", "--json")
    assert code == 0 and json.loads(out)["prod_image"] == variant
    assert flow.prod_serves() == variant
    code, out = flow.cli("rollback", "--json")                # default: the previous verified release
    assert code == 0 and json.loads(out)["prod_image"] == good
    assert flow.prod_serves() == good
    release_id = next(e.get("release_id") for e in flow.ledger.entries()
                      if e.kind == "build" and e.get("image") == variant)
    code, out = flow.cli("rollback", "--to", release_id, "--json")  # and forward again, by release id
    assert code == 0 and json.loads(out)["prod_image"] == variant
    code, out = flow.cli("rollback", "--to", good.split("@")[1][:19], "--json")  # by digest prefix
    assert code == 0 and flow.platform.pinned_image("prod") == good


def _promote_process(flow: Flow) -> subprocess.Popen[str]:
    # `--retry-rejected`: the tests below roll PROD back off `variant` before promoting it again, and PROD's
    # verdict on a digest it was rolled back off outlasts any later STAGING run (test_review13_a2_prod_verdict.py).
    return subprocess.Popen([sys.executable, "-m", "goldgate.cli", "promote", "--retry-rejected", "--home",
                             str(flow.home), "--reports-dir", str(flow.reports)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def _wait_for_lock_holder(flow: Flow, proc: subprocess.Popen[str]) -> None:
    lock = flow.home / "release.lock"
    while proc.poll() is None:
        if lock.exists() and "promote" in lock.read_text():
            return
        time.sleep(0.02)
    pytest.fail(f"the first promote ended before it was seen holding the lock: {proc.communicate()}")


def test_two_concurrent_promotes_do_not_both_run(flow: Flow) -> None:
    good, variant = flow.good, flow.variant                   # `good` brings both stacks up when run alone
    if flow.platform.pinned_image("prod") != good:
        assert flow.cli("rollback", "--to", good)[0] == 0
    assert flow.cli("deploy", "staging", "--image", variant)[0] == 0
    assert flow.cli("golden", "staging")[0] == 0
    intents_before = len([e for e in flow.ledger.entries() if e.get("phase") == "intent"])
    first = _promote_process(flow)
    _wait_for_lock_holder(flow, first)
    second = _promote_process(flow)
    _, err2 = second.communicate(timeout=120)
    _, err1 = first.communicate(timeout=300)
    assert second.returncode == 1
    assert "goldgate: error: another promotion or rollback is running (promote staging -> prod" in err2
    assert first.returncode == 0, err1
    intents = [e for e in flow.ledger.entries() if e.get("phase") == "intent"]
    assert len(intents) == intents_before + 1
    assert flow.platform.pinned_image("prod") == variant


def test_a_promotion_killed_part_way_leaves_prod_on_a_recorded_digest(flow: Flow) -> None:
    good, variant = flow.good, flow.variant
    if flow.platform.pinned_image("prod") != good:            # in file order the concurrent promote left `variant`
        assert flow.cli("rollback", "--to", good)[0] == 0
    assert flow.cli("deploy", "staging", "--image", variant)[0] == 0
    assert flow.cli("golden", "staging")[0] == 0
    proc = _promote_process(flow)
    while proc.poll() is None and not interrupted(flow.ledger.entries()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    [open_intent] = interrupted(flow.ledger.entries())
    assert (open_intent.image, open_intent.before) == (variant, good)
    pinned = flow.platform.pinned_image("prod")
    assert pinned in (good, variant)                          # one of the two the intent recorded
    code, out = flow.cli("history", "--json")                 # the record is intact
    assert code == 0 and json.loads(out)[-1]["phase"] == "intent"
    code, _ = flow.cli("rollback", "--to", good)              # the next PROD change closes the intent
    assert code == 0 or pinned == good
    closed = [e for e in flow.ledger.entries() if e.get("outcome") == "interrupted"]
    assert closed and closed[-1].get("intent_seq") == open_intent.intent_seq and closed[-1].get("pinned") == pinned
    assert flow.platform.pinned_image("prod") == good
