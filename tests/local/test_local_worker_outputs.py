"""A local worker leaves no job's images on its disk, as a cloud worker must not (images/worker/handler.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stackfiles import stacks_file
from test_local_stack import api, wait_terminal

from goldgate.commands.local import ensure_up
from goldgate.local.platform import LocalPlatform


@pytest.fixture(scope="module")
def worker_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlatform, Path]]:
    """A stack whose processes keep their temporary directories (the ComfyUI emulator's output folder among
    them) under a directory of the test's own."""
    home, tmp = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("tmpdir")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp))
        p = LocalPlatform(home, stacks_file(home))
        try:
            ensure_up(p, "staging")
            yield p, tmp
        finally:
            p.down("staging")


def test_a_local_worker_removes_each_jobs_images_from_comfyuis_output_folder(worker_tmp) -> None:
    platform, tmp = worker_tmp
    with api(platform, "staging") as client:
        created = client.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                         "inputs": {"prompt": "a lighthouse", "seed": 7,
                                                                    "width": 512, "height": 512}})
        assert created.status_code == 202, created.text
        body = wait_terminal(client, created.json()["job_id"])
    assert body["status"] == "completed", body
    output_dirs = list(tmp.glob("comfyui-emulator-out-*"))
    assert output_dirs, f"no ComfyUI emulator output folder under {tmp}: is the worker running elsewhere?"
    left = [p for d in output_dirs for p in d.rglob("*") if p.is_file()]
    assert left == [], f"the worker left {len(left)} image(s) on its disk: {left[:3]}"
