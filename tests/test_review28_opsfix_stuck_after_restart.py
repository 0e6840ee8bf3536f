"""After a local stack restarts (`goldgate down` and `up`, or a host that died and `up`), the jobs its last host had
sent cannot be running: the local RunPod's queue ended with that host. `up` names them; `goldgate stuck` lists
them as stuck at once (with the recover line, and why), not among the younger jobs that "may simply be running",
because the host now records when it started (state.json's `started_at`). A state.json without it (a host an older
goldgate started) is judged by the window alone, as before."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "local"))  # the local-target test kit: stack files, process cleanup

from ci_policy import needs
from stuck_support import insert_queued_job, own_home, stuck, up_staging

from goldgate.cli import main
from goldgate.local.state import StackDir, write_json_atomic

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

SENT = "a" * 32       # the last host's RunPod took it (its id recorded), then ended with that host
UNSENT = "b" * 32     # the last host's service never recorded a RunPod id for it
NEW = "c" * 32        # sent to the running host's RunPod: it may be running


@pytest.fixture
def home(tmp_path: Path):
    with own_home(tmp_path) as home:
        yield home


def test_jobs_of_the_hosts_before_are_stuck_at_once_with_the_line_up_gave(home, capsys):
    platform = up_staging(home)
    try:
        platform.down("staging")
        db = StackDir(home, "staging").db_path
        # What a host that died left: two jobs a minute old, far younger than the 10 min window.
        insert_queued_job(db, SENT, "old-host-rp-1", time.time() - 60)
        insert_queued_job(db, UNSENT, None, time.time() - 30)
        said: list[str] = []
        platform.up("staging", said.append, timeout_s=90)
        unsettled = [line for line in said if "never settled" in line]
        assert len(unsettled) == 1 and SENT in unsettled[0], said
        assert f"`goldgate recover JOB --stack staging` settles each: {SENT}" in unsettled[0]
        # ... and the one with no RunPod id is not passed over in silence: stuck lists it
        assert "1 more with no RunPod id recorded: `goldgate stuck staging` lists them" in unsettled[0], unsettled
        insert_queued_job(db, NEW, "new-host-rp-1", time.time())

        code, report = stuck(home, capsys, "--json")
        assert code == 1, report
        assert [j["id"] for j in report["jobs"]] == [SENT, UNSENT], report
        assert (report["stuck"], report["younger"]) == (2, 1)
        started = report["host_started_at"]
        assert started and report["created_before"] < started <= report["now"]
        by_id = {j["id"]: j for j in report["jobs"]}
        assert all(j["before_host_start"] and not j["past_deadline"] for j in by_id.values())
        # the line `up` gave, and why it settles the job now rather than "may simply be running"
        assert by_id[SENT]["recover"] == f"goldgate recover {SENT} --stack staging"
        assert "no webhook will come" in by_id[SENT]["advice"] and "recover settles it now" in by_id[SENT]["advice"]
        assert "no webhook will come" in by_id[UNSENT]["advice"] and "--runpod-job-id" in by_id[UNSENT]["advice"]

        code, text = stuck(home, capsys)
        assert code == 1 and text.startswith("staging: 2 jobs stuck (local: queued or in progress for more than "
                                             f"10 min or since before its host started ({started})"), text
        assert "1 younger job queued or in progress, not listed: may simply be running" in text

        # The recover line does settle it: the running host's RunPod has no such job.
        capsys.readouterr()
        assert main(["recover", SENT, "--stack", "staging", "--home", str(home)]) == 0
        assert capsys.readouterr().out.startswith(f"{SENT}: failed")
        code, report = stuck(home, capsys, "--json")
        assert [j["id"] for j in report["jobs"]] == [UNSENT] and report["younger"] == 1

        # A host an older goldgate started wrote no `started_at`: its jobs are judged by the window alone.
        d = StackDir(home, "staging")
        state = d.read_state()
        del state["started_at"]
        write_json_atomic(d.state_file, state)
        code, report = stuck(home, capsys, "--json")
        assert code == 0 and report["jobs"] == [] and report["younger"] == 2 and report["host_started_at"] is None
    finally:
        platform.down("staging")
