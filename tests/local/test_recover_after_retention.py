"""A job whose webhook was lost and that an operator recovers after RunPod has forgotten it (RunPod keeps a job's
output 30 minutes; /status then answers 404): `goldgate recover` gives the client its images from the outcome the
worker stored next to them. A real stack (object store, RunPod emulator with real worker processes, service), its
webhooks dropped and its result retention shrunk from 30 minutes to one second in its stack file
(`local.result_retention_s`)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.errors import RunPodNotFound
from goldgate.runpod.jobs import DataPlaneClient

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

RETENTION_S = 1  # seconds the local RunPod keeps a finished job (`local.result_retention_s`; RunPod: 1800)


def _up_with_short_retention(home: Path) -> LocalPlatform:
    stacks = stacks_file(home, endpoint={"workers_max": 1},
                         staging={"webhook_retry_delay_s": 0.2, "result_retention_s": RETENTION_S,
                                  "faults": {"drop_all_deliveries_rate": 1.0}})
    platform = LocalPlatform(home, stacks)
    StackDir(home, "staging").pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up("staging", timeout_s=90)
    return platform


def _forgotten(runpod: DataPlaneClient, runpod_job_id: str) -> bool:
    try:
        runpod.status(runpod_job_id)
    except RunPodNotFound:
        return True
    return False


def test_a_job_whose_webhook_was_lost_is_recovered_with_its_images_after_runpod_forgot_it(home, capsys):
    platform = _up_with_short_retention(home)
    try:
        status = platform.status("staging")
        api = httpx.Client(base_url=status.api_url, timeout=30,
                           headers={"Authorization": f"Bearer {platform.api_token('staging')}"})
        runpod = DataPlaneClient(platform.runpod_api_key("staging"), status.endpoint_id,
                                 base_url=status.runpod_endpoint_base)
        created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                      "inputs": {"prompt": "a lighthouse"}})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        assert wait_until(lambda: _forgotten(runpod, runpod_job_id), 90), "RunPod never forgot the job"
        assert api.get(f"/api/status/{job_id}").json()["status"] in ("queued", "in_progress")  # no webhook came

        assert main(["recover", job_id, "--stack", "staging", "--json", "--home", str(home)]) == 0

        recovered = json.loads(capsys.readouterr().out)
        assert (recovered["status"], recovered["recovered_from"]) == ("completed", "result_store"), recovered
        assert main(["recover", job_id, "--stack", "staging", "--home", str(home)]) == 0  # the text form says so
        assert "from the outcome its worker stored" in capsys.readouterr().out
        view = api.get(f"/api/status/{job_id}").json()
        assert view["status"] == "completed" and view["results"], view
        for result in view["results"]:
            image = httpx.get(result["url"], timeout=30)
            assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
            assert len(image.content) == result["bytes"]
        assert view["cost_estimate_usd"] is None  # RunPod's run time went with the job: no cost is guessed
        runpod.close()
        api.close()
    finally:
        platform.down("staging")
