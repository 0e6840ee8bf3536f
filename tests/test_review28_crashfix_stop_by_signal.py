"""A local stack's host stopped by a signal goldgate did not send (a reboot, systemd, `kill`) with jobs in flight no
longer looks like a clean `goldgate down`: the host logs `stack.stopped` at warning with the jobs it left, `goldgate
status` explains the stop ("not stopped by down"), and `goldgate stuck` lists every unsettled job of a stack that is
down as stuck (exit 1): no RunPod runs for it, so none "may simply be running" (after a kill -9 too). A stop by
`goldgate down` stays an info line, and status says only "down". `up` names at most 20 ids, then points to
`goldgate stuck`."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "local"))  # the local-target test kit: stack files, process cleanup

from ci_policy import needs
from processes import wait_until
from stuck_support import insert_queued_job, own_home, stuck, up_staging

from goldgate.cli import main
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

SENT = "a" * 32    # the host's RunPod took it (its id recorded): in flight when the host stops
UNSENT = "b" * 32  # no RunPod id recorded


def _insert(db: Path, job_id: str, runpod_job_id: str | None) -> None:
    # seconds old, far younger than the 10 min window: "may simply be running" while a host runs
    insert_queued_job(db, job_id, runpod_job_id, time.time())


def _stopped_lines(home: Path) -> list[dict]:
    log = StackDir(home, "staging").logs_dir / "stackhost.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["event"] == "stack.stopped"]


def _stop_host(platform: LocalPlatform, sig: int) -> None:
    pid = platform.host_pid("staging")
    assert pid is not None
    os.kill(pid, sig)
    assert wait_until(lambda: platform.host_pid("staging") is None, 60), "the host did not end"


@pytest.fixture
def platform(tmp_path: Path):
    with own_home(tmp_path) as home:
        platform = up_staging(home)
        try:
            yield platform
        finally:
            platform.down("staging")


def test_a_sigterm_with_jobs_in_flight_is_a_warning_status_explains_and_stuck_lists_them(platform, capsys):
    home = platform.home
    db = StackDir(home, "staging").db_path
    _insert(db, SENT, "rp-in-flight-1")
    _insert(db, UNSENT, None)
    _stop_host(platform, signal.SIGTERM)  # a reboot, systemd, `kill`: not `goldgate down`

    [line] = _stopped_lines(home)
    assert line["level"] == "warning", line
    assert line["data"]["signal"] == "SIGTERM" and line["data"]["job_ids"] == [SENT], line
    assert (line["data"]["unsettled"], line["data"]["no_runpod_id"]) == (1, 1), line
    assert "not by `goldgate down staging`" in line["message"] and SENT[:12] in line["message"]

    status = platform.status("staging")
    assert not status.running
    assert status.ended and "stopped by a signal (SIGTERM" in status.ended and "not by `goldgate down`" in status.ended
    assert "2 job(s) were still queued or in progress" in status.ended and SENT in status.ended
    capsys.readouterr()
    assert main(["status", "staging", "--home", str(home)]) == 0
    text = capsys.readouterr().out
    assert "staging: down" in text and "not stopped by down" in text and "SIGTERM" in text, text

    # Down: no RunPod runs for the stack, so none of its jobs may simply be running.
    code, report = stuck(home, capsys, "--json")
    assert code == 1, report
    assert (report["stuck"], report["younger"], report["stack_down"]) == (2, 0, True), report
    assert {j["id"] for j in report["jobs"]} == {SENT, UNSENT}
    assert all(j["before_host_start"] and "the stack is down" in j["advice"] for j in report["jobs"]), report
    code, text = stuck(home, capsys)
    assert code == 1 and text.startswith("staging: 2 jobs stuck (local: queued or in progress while the stack is "
                                         "down"), text
    assert "may simply be running" not in text

    # `up` replaces the record (and names the jobs); `down` of a stack with jobs in flight stays an info line
    said: list[str] = []
    platform.up("staging", said.append, timeout_s=90)
    assert any("never settled" in s and SENT in s for s in said), said
    assert platform.status("staging").ended is None
    platform.down("staging")
    assert [line["level"] for line in _stopped_lines(home)] == ["warning", "info"]
    assert platform.status("staging").ended is None
    code, report = stuck(home, capsys, "--json")  # down by `goldgate down`: the same, no RunPod runs
    assert code == 1 and (report["stuck"], report["younger"]) == (2, 0), report


def test_after_a_kill_9_stuck_lists_every_job_and_up_points_past_the_20_ids_it_names(platform, capsys):
    home = platform.home
    db = StackDir(home, "staging").db_path
    ids = [f"{n:032x}" for n in range(1, 23)]  # 22 with a RunPod id: `up` names 20
    for n, job_id in enumerate(ids):
        _insert(db, job_id, f"rp-{n}")
    code, report = stuck(home, capsys, "--json")
    assert code == 0 and report["younger"] == 22 and not report["stack_down"]  # a host runs: they may be running
    _stop_host(platform, signal.SIGKILL)

    code, report = stuck(home, capsys, "--json")
    assert code == 1 and (report["stuck"], report["younger"], report["stack_down"]) == (22, 0, True), report

    said: list[str] = []
    platform.up("staging", said.append, timeout_s=90)
    [unsettled] = [s for s in said if "never settled" in s]
    assert " ".join(ids[:20]) in unsettled and ids[20] not in unsettled, unsettled
    assert "(and 2 more: `goldgate stuck staging` lists them)" in unsettled, unsettled
    code, report = stuck(home, capsys, "--json")  # and it does: created before the running host started
    assert code == 1 and report["stuck"] == 22 and not report["stack_down"], report
