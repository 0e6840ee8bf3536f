"""A local deploy whose rollout a busy old worker holds past the wait: the stack took the pin and serves the new
image, so the ledger must record the deploy (its rollout not confirmed), as the cloud deployer's does."""

from __future__ import annotations

import functools
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from stuck_support import own_home, signal_all, up_staging, worker_pids

from goldgate.commands.local import WORKER_SOURCE
from goldgate.commands.release import do_deploy
from goldgate.errors import GoldgateError
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.release.deployers.local import LocalDeployer
from goldgate.release.ledger import Ledger


def test_a_deploy_whose_rollout_a_busy_worker_holds_is_recorded_in_the_ledger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with own_home(tmp_path) as home:
        platform = up_staging(home)
        served = platform.pinned_image("staging")
        source = tmp_path / "worker"
        shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
        handler = source / "handler.py"
        handler.write_text(handler.read_text() + "# a second build, another digest\n")
        candidate = image_store.build_local_image(source, home)
        assert candidate != served
        state = platform.require_running("staging")
        client = httpx.Client(base_url=state["api_url"], timeout=30,
                              headers={"Authorization": f"Bearer {platform.api_token('staging')}"})
        job = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a long render"}}
        with client:
            firsts = [client.post("/api/queue/create", json=job).json()["job_id"] for _ in range(3)]
            deadline = time.monotonic() + 60
            for first in firsts:   # three at once: the endpoint scales to three workers, each then polling for more
                while client.get(f"/api/status/{first}").json()["status"] != "completed":
                    assert time.monotonic() < deadline, "the first jobs never completed"
                    time.sleep(0.2)
            big = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a long render", "width": 2048, "height": 2048}}
            stopped: list[int] = []
            try:
                for attempt in range(12):   # a worker stopped mid-job: a long render on the old release
                    for _ in range(3):
                        created = client.post("/api/queue/create", json=big)
                        assert created.status_code == 202, created.text
                    time.sleep(0.05 * (attempt % 4))
                    stopped = worker_pids(home)
                    signal_all(stopped, signal.SIGSTOP)
                    time.sleep(1.0)
                    if any(w.get("status") == "RUNNING" for w in platform.status("staging").workers or []):
                        break
                    signal_all(stopped, signal.SIGCONT)
                    time.sleep(1.0)
                else:
                    raise AssertionError("no worker could be stopped with a job in flight")
                monkeypatch.setattr(LocalPlatform, "deploy", functools.partialmethod(LocalPlatform.deploy, timeout_s=15))
                ledger = Ledger(home)
                with pytest.raises(GoldgateError):
                    do_deploy(LocalDeployer(home, platform), ledger, "staging", candidate, "test")
                assert platform.pinned_image("staging") == candidate, "the rollout held no longer than the wait"
                deploys = [e for e in ledger.entries() if e.kind == "deploy" and e.fields.get("image") == candidate]
                assert deploys, (f"staging is pinned to {candidate} and serves it, yet the ledger records no deploy "
                                 "of it: `history` and the checklist's staging_image_pipeline disagree with the stack")
            finally:
                signal_all(stopped, signal.SIGCONT)
