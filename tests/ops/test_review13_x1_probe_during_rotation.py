"""The checklist's live webhook probe during a local webhook secret rotation (docs/RUNBOOK.md, 'Rotate the webhook
secret'): after the secret files changed and before the service restarts on them, the service still holds the old
secret while the probe signed with the new one from the file. Before, the replay was refused 401 and the webhook line
failed for no fault of the service. Now the replay waits for step 3 and the line says so (the status and result
are still read live); once the rotation is applied, the replay runs again. A real stack: object store, RunPod emulator with a real worker process, service."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ci_policy import needs

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = [needs(Path("/proc/self").is_dir(), "/proc (the stack's processes are found through it)"),
              pytest.mark.usefixtures("scan_once")]  # checklist runs scan service/ once (conftest.py)

STACK = "staging"
LIVE_LINES = ("webhook_idempotent", "status_completed", "result_via_api")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[LocalPlatform]:
    p = LocalPlatform(tmp_path / "home")
    yield p
    p.down(STACK)


def _lines(capsys, platform: LocalPlatform, reports: Path) -> dict[str, dict]:
    main(["checklist", STACK, "--home", str(platform.home), "--reports-dir", str(reports), "--json"])
    return {c["id"]: c for c in json.loads(capsys.readouterr().out)["checks"] if c["id"] in LIVE_LINES}


def _completed_job(platform: LocalPlatform) -> str:
    status = platform.status(STACK)
    with httpx.Client(base_url=status.api_url, timeout=30,
                      headers={"Authorization": f"Bearer {platform.api_token(STACK)}"}) as api:
        created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                      "inputs": {"prompt": "a lighthouse"}})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        deadline = time.monotonic() + 180   # a bound on a hang, not a timed assertion
        while (view := api.get(f"/api/status/{job_id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"the job never finished: {view}"
            time.sleep(0.5)
        assert view["status"] == "completed", view
    return job_id


def test_the_probe_waits_for_a_half_applied_rotation_and_runs_once_it_is_applied(platform, tmp_path, capsys):
    d = StackDir(platform.home, STACK)
    image = image_store.build_local_image(WORKER_SOURCE, platform.home)
    d.pin(image, reason="test")
    platform.up(STACK, timeout_s=90)
    job_id = _completed_job(platform)
    reports = tmp_path / "reports"
    capsys.readouterr()
    before = _lines(capsys, platform, reports)
    assert before["webhook_idempotent"]["status"] == "pass", before   # the probe works on an unrotated stack
    assert f"replayed the COMPLETED webhook of job {job_id}: HTTP 200" in before["webhook_idempotent"]["evidence"]

    # Steps 1 and 2 of the runbook's local rotation; step 3 (apply it) not yet.
    old, new = platform.webhook_secret(STACK), secrets.token_hex(32)
    d.secret_file("webhook_secret_previous").write_text(old + "\n")
    d.secret_file("webhook_secret").write_text(new + "\n")
    during = _lines(capsys, platform, reports)
    # Before: fail, "replayed the COMPLETED webhook of job ...: HTTP 401".
    idem = during["webhook_idempotent"]
    assert idem["status"] == "n/a", during
    assert "step 3 of 'Rotate the webhook secret' in docs/RUNBOOK.md" in idem["evidence"]
    assert f"goldgate reload {STACK}" in idem["evidence"]
    assert "HTTP 401" not in idem["evidence"]
    # The status and the result are still read live (they need no webhook secret).
    assert during["status_completed"] == before["status_completed"], during
    assert during["status_completed"]["evidence"].startswith(f"GET /api/status/{job_id} -> 200"), during
    assert during["result_via_api"]["status"] == "pass" and "GET /api/result/" in during["result_via_api"]["evidence"]
    assert all(old not in c["evidence"] and new not in c["evidence"] for c in during.values())

    platform.deploy(STACK, image, timeout_s=120)   # step 3: the service now holds both secrets
    after = _lines(capsys, platform, reports)
    assert after["webhook_idempotent"]["status"] == "pass", after
    assert "HTTP 200" in after["webhook_idempotent"]["evidence"]
