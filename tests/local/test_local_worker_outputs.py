"""A local worker leaves no job's images on its disk, as a cloud worker must not (images/worker/handler.py), and a
stack leaves nothing in TMPDIR once it is down."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import kill_everything_naming, processes_naming, wait_until
from stackfiles import stacks_file
from test_local_stack import api, wait_terminal

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir


@pytest.fixture(scope="module")
def worker_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlatform, Path]]:
    """A stack of the module's own (the second test kills its workers and stops it; each test brings it up, a
    running one is left as it is: a start and stop was most of each test's CPU) whose processes keep their
    temporary directories (the ComfyUI emulator's output folder among them) under a directory of the module's
    own."""
    root = tmp_path_factory.mktemp("worker-outputs")
    home, tmp = root / "home", root / "tmpdir"
    home.mkdir()
    tmp.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp))
        p = LocalPlatform(home, stacks_file(home))
        try:
            yield p, tmp
        finally:
            try:
                p.down("staging")
            finally:
                kill_everything_naming(str(home))


def test_a_local_worker_removes_each_jobs_images_from_comfyuis_output_folder(worker_tmp) -> None:
    platform, _ = worker_tmp
    ensure_up(platform, "staging")
    with api(platform, "staging") as client:
        created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                         "inputs": {"prompt": "a lighthouse", "seed": 7,
                                                                    "width": 512, "height": 512}})
        assert created.status_code == 202, created.text
        body = wait_terminal(client, created.json()["job_id"])
    assert body["status"] == "completed", body
    workers_dir = StackDir(platform.home, "staging").workers_dir  # each worker's TMPDIR
    output_dirs = list(workers_dir.rglob("comfyui-emulator-out-*"))
    assert output_dirs, f"no ComfyUI emulator output folder under {workers_dir}: is the worker running elsewhere?"
    left = [p for d in output_dirs for p in d.rglob("*") if p.is_file()]
    assert left == [], f"the worker left {len(left)} image(s) on its disk: {left[:3]}"


def test_a_stack_whose_worker_was_killed_leaves_nothing_in_tmpdir_once_down(worker_tmp) -> None:
    platform, tmp = worker_tmp
    ensure_up(platform, "staging")
    with api(platform, "staging") as client:  # a job, so that a worker is up and has rendered
        created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                         "inputs": {"prompt": "a harbour", "width": 512,
                                                                    "height": 512}})
        assert created.status_code == 202, created.text
        assert wait_terminal(client, created.json()["job_id"])["status"] == "completed"
    # A worker leads its session (its SDK heartbeat child, a fork, shows the same command line).
    workers = [pid for pid, argv in processes_naming(str(platform.home)).items()
               if "goldgate.local.worker_process" in argv and os.getpgid(pid) == pid]
    assert workers, "no worker process of the stack is running"
    for pid in workers:
        os.killpg(pid, signal.SIGKILL)  # as the OOM killer would: no clean-up code of the worker runs
    assert wait_until(lambda: not set(workers) & set(processes_naming(str(platform.home))), 30)
    platform.down("staging")
    left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    assert left == [], f"the stack left {len(left)} path(s) in TMPDIR: {left[:5]}"
    workers_dir = StackDir(platform.home, "staging").workers_dir
    assert list(workers_dir.iterdir()) == [], "the killed worker's scratch space outlived the stack"
