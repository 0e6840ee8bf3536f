"""A local deploy whose rollout a worker of the release before holds (busy with a long render past the wait): the
operator is told that the stack took the image, why its rollout is not confirmed (that worker, its job), and what to
do; the ledger records the deploy as applied, its rollout not confirmed, as it does the cloud's."""

from __future__ import annotations

import functools
import re
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest
from stuck_support import own_home, signal_all, up_staging, worker_pids

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.release.ledger import Ledger


def _hold_a_worker(platform: LocalPlatform, home: Path, client: httpx.Client, renders: set[str]) -> list[int]:
    """Stop the workers while one of them runs a job (one of `renders`, filled): it stays busy on its release."""
    job = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a warm-up"}}
    firsts = [client.post("/api/queue/create", json=job).json()["job_id"] for _ in range(2)]
    deadline = time.monotonic() + 60
    for first in firsts:
        while client.get(f"/api/status/{first}").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the first jobs never completed"
            time.sleep(0.2)
    big = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a long render", "width": 2048, "height": 2048}}
    for attempt in range(12):
        for _ in range(2):
            created = client.post("/api/queue/create", json=big)
            assert created.status_code == 202, created.text
            renders.add(created.json()["job_id"])
        time.sleep(0.05 * (attempt % 4))
        stopped = worker_pids(home)
        signal_all(stopped, signal.SIGSTOP)
        time.sleep(1.0)
        if any(w.get("status") == "RUNNING" for w in platform.status("staging").workers or []):
            return stopped
        signal_all(stopped, signal.SIGCONT)
        time.sleep(1.0)
    raise AssertionError("no worker could be stopped with a job in flight")


def test_a_deploy_held_by_a_busy_worker_says_why_and_what_to_do_and_is_recorded_unconfirmed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with own_home(tmp_path) as home:
        platform = up_staging(home)
        served = platform.pinned_image("staging")
        source = tmp_path / "worker"
        shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
        (source / "handler.py").write_text((source / "handler.py").read_text() + "# another digest\n")
        candidate = image_store.build_local_image(source, home)
        state = platform.require_running("staging")
        client = httpx.Client(base_url=state["api_url"], timeout=30,
                              headers={"Authorization": f"Bearer {platform.api_token('staging')}"})
        stopped: list[int] = []
        renders: set[str] = set()
        try:
            with client:
                stopped = _hold_a_worker(platform, home, client, renders)
            monkeypatch.setattr(LocalPlatform, "deploy", functools.partialmethod(LocalPlatform.deploy, timeout_s=12))
            capsys.readouterr()
            code = main(["deploy", "staging", "--image", candidate, "--home", str(home)])
            said = capsys.readouterr()
        finally:
            signal_all(stopped, signal.SIGCONT)
        deploys = [e for e in Ledger(home).entries() if e.kind == "deploy" and e.fields.get("image") == candidate]
    text = said.out + said.err
    assert code != 0
    assert "Traceback" not in text and "Error:" not in text.replace("error:", ""), text
    assert f"staging serves {candidate}, but its rollout did not reach every worker" in text, text
    assert "of the release before, busy with" in text, text      # the cause, and the jobs that hold it
    named = set(re.findall(r"\b[0-9a-f]{32}\b", text.split("busy with", 1)[1].split(";", 1)[0]))
    assert named and named <= renders, (named, renders)
    assert "goldgate status staging" in text and "goldgate stuck staging" in text, text   # what to do
    assert "deploy it again to confirm the rollout" in text, text
    assert "its rollout not confirmed" in text, text
    assert "characters cut" not in text, text               # the CLI cuts a longer line: it fits, and says all that
    assert len(deploys) == 1, deploys
    fields = deploys[0].fields
    assert fields["rollout_confirmed"] is False and fields["after"] == candidate and fields["before"] == served
    assert fields["rollout"]["confirmed"] is False and fields["rollout"]["endpoint_id"]
