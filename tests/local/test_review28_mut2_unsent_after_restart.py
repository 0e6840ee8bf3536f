"""`goldgate up` of a stack whose last host left jobs unsettled names them (the local RunPod's queue ended with that
host). When every one of them has no RunPod id recorded (its host's service never recorded what RunPod answered),
`up` still says so, and points at `goldgate stuck`, which lists them with what recover needs: the operator is not
left with no word of jobs that will never settle."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "local"))

from ci_policy import needs
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from service.jobs import iso_ms

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

UNSENT = "d" * 32


def test_up_names_jobs_left_with_no_runpod_id_when_they_are_all_there_is(home):
    platform = LocalPlatform(home, stacks_file(home))
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    try:
        platform.down("staging")
        created = time.time() - 30
        with sqlite3.connect(StackDir(home, "staging").db_path) as conn:
            conn.execute("INSERT INTO jobs (id, stack, workflow_id, workflow_version, inputs_json, trace_id, status, "
                         "runpod_job_id, created_at, created_at_ms, updated_at, policy_ttl_ms, run_timeout_ms) "
                         "VALUES (?, 'staging', 'sdxl-txt2img', 'sdxl-txt2img@1.0.0', '{}', ?, 'queued', NULL, ?, "
                         "?, ?, 3600000, 10000)", (UNSENT, UNSENT, iso_ms(created), int(created * 1000),
                                                    iso_ms(created)))
        conn.close()
        said: list[str] = []
        platform.up("staging", said.append, timeout_s=90)
        named = [line for line in said if "no RunPod id recorded" in line]
        assert len(named) == 1, said
        assert named[0].startswith("staging: 1 job(s) with no RunPod id recorded "), named
        assert "no webhook will come for them" in named[0] and "`goldgate stuck staging` lists them" in named[0]
    finally:
        platform.down("staging")
