"""A local deploy cut short by its host's crash, which `goldgate up` then completed on the pin, does not make the gate
call the stack file "older than STAGING" (review 28).

STAGING ran A (the ledger's last deploy); `goldgate deploy staging --image B` moved the pin and its host died as it
redeployed; `goldgate up staging` started STAGING on its pin, B; a golden run passed on B. `promote --check` then
refused B twice: staging_image ("this checkout pins B on staging, but its last deploy put A there: the stack file is
older than STAGING (a re-run of an earlier CI run?)") and report_digest ("STAGING now runs A"), because B, deployed
once before A, was read as a stale checkout's pin. A local stack's pin is its state dir's, which no checkout holds an
older copy of: when its running host serves it, it is what STAGING runs. The error-rate window of B starts when B was
pinned, not at the earlier deploy of B the ledger holds (that window counted A's jobs too). A pin the host does not
serve is still judged by the ledger, as the cloud's is.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from release_support import invoke

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "local"))  # the local-target test kit: stack files, worker images

from stackfiles import worker_variant

from goldgate.commands.local import ensure_up
from goldgate.commands.release import do_deploy
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.release.cases import GOLDEN_DIR
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger

# a case of each shipped workflow: a full run of this suite covers them all
CASES = ("flux-fox", "sdxl-defaults", "sdxl-img2img-landscape")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    home = tmp_path / "home"
    home.mkdir()
    p = LocalPlatform(home)   # the shipped stacks file, as the CLI reads it
    try:
        yield p
    finally:
        p.down("staging")


def _suite(root: Path) -> list[str]:
    for sub in ("cases", "references"):
        (root / sub).mkdir(parents=True)
    for case in CASES:
        (root / "cases" / f"{case}.yaml").write_bytes((GOLDEN_DIR / "cases" / f"{case}.yaml").read_bytes())
        (root / "references" / f"{case}.png").write_bytes((GOLDEN_DIR / "references" / "local" / f"{case}.png")
                                                          .read_bytes())
    return ["--cases-dir", str(root / "cases"), "--references-dir", str(root / "references"),
            "--reports-dir", str(root / "reports")]


def _gone(pid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_deploy_its_host_died_in_and_up_completed_is_what_the_gate_judges(
        platform: LocalPlatform, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = platform.home
    ledger = Ledger(home)
    deployer = LocalDeployer(home, platform)
    a = ensure_up(platform, "staging").image
    b = worker_variant(home, tmp_path)
    assert a and b != a
    do_deploy(deployer, ledger, "staging", b, "user")   # B ran on STAGING once...
    do_deploy(deployer, ledger, "staging", a, "user")   # ...and A since: the ledger's last deploy (#2) put A there

    host = json.loads(StackDir(home, "staging").state_file.read_text())["pid"]

    def crash(line: str) -> None:   # kill -9 of the host as the deploy says "redeploying"
        if line.endswith("redeploying"):
            os.kill(host, signal.SIGKILL)
            assert _gone(host)

    with pytest.raises(StateError, match="`goldgate up staging` starts it again on its pinned image"):
        deployer.deploy("staging", b, crash)
    assert [e.get("after") for e in ledger.entries() if e.kind == "deploy"] == [b, a]   # nothing recorded of it

    code, _, err = invoke(capsys, "up", "staging", "--home", str(home))
    assert code == 0, err
    status = platform.status("staging")
    assert (status.image, status.pin_not_served) == (b, None)
    args = ["--home", str(home), *_suite(tmp_path / "golden")]
    code, _, err = invoke(capsys, "golden", "staging", *args, "--concurrency", "1")
    assert code == 0, err

    code, out, err = invoke(capsys, "promote", "--check", "--json", *args)
    gate = json.loads(out)
    failed = {c["name"]: c["detail"] for c in gate["conditions"] if not c["passed"]}
    assert code == 0 and gate["passed"] and gate["image"] == b, failed
    details = {c["name"]: c["detail"] for c in gate["conditions"]}
    assert details["staging_image"] == f"STAGING runs {b}"
    # B's window starts when the cut-short deploy pinned it, not at ledger #1 (which would count A's jobs as B's).
    pinned_at = datetime.fromisoformat(json.loads(StackDir(home, "staging").pin_file.read_text())["pinned_at"])
    since = details["error_rate"].split(" since ")[1].split(" ")[0]
    assert since == pinned_at.isoformat(timespec="seconds").replace("+00:00", "Z"), details["error_rate"]


def test_a_pin_the_running_host_does_not_serve_is_still_judged_by_the_ledger(
        platform: LocalPlatform, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The served pin is the witness: a pin moved under a host that serves B (a deploy cut short before the host took
    it, or a hand edit back to an image STAGING ran before) does not open the gate for the report on that image."""
    home = platform.home
    ledger = Ledger(home)
    deployer = LocalDeployer(home, platform)
    a = ensure_up(platform, "staging").image
    b = worker_variant(home, tmp_path)
    do_deploy(deployer, ledger, "staging", a, "user")
    args = ["--home", str(home), *_suite(tmp_path / "golden")]
    code, _, err = invoke(capsys, "golden", "staging", *args, "--concurrency", "1")   # a pass on A
    assert code == 0, err
    do_deploy(deployer, ledger, "staging", b, "user")
    StackDir(home, "staging").pin(a, reason="an earlier checkout's pin")   # the host serves B still
    code, out, _ = invoke(capsys, "promote", "--check", "--json", *args)
    gate = json.loads(out)
    failed = {c["name"]: c["detail"] for c in gate["conditions"] if not c["passed"]}
    assert code == 1 and not gate["passed"] and gate["image"] is None
    assert "the stack file is older than STAGING" in failed["staging_image"], failed
    assert f"STAGING now runs {b}" in failed["report_digest"], failed
