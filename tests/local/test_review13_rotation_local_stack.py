"""Rotating a local stack's webhook secret: the operator copies the old secret into
`secrets/webhook_secret_previous`, writes a new one into `secrets/webhook_secret`, and redeploys; the webhook of
a job that was in flight, signed with the old secret, is still applied. Before, nothing fed the service the previous
secret, so the new secret answered that webhook 401 for good and the job waited for a hand recovery. A real stack
(object store, RunPod emulator with a real worker process, service), its webhook deliveries dropped so that the job's
outcome reaches the service only when the test delivers it as RunPod would, after the rotation."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.jobs import DataPlaneClient
from service.signing import result_signature, webhook_signature

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"


def test_a_rotated_webhook_secret_still_applies_the_webhook_of_a_job_in_flight(home: Path) -> None:
    stacks = stacks_file(home, endpoint={"workers_max": 1},
                         staging={"webhook_retry_delay_s": 0.2, "faults": {"drop_all_deliveries_rate": 1.0}})
    platform = LocalPlatform(home, stacks)
    d = StackDir(home, STACK)
    image = image_store.build_local_image(WORKER_SOURCE, home)
    d.pin(image, reason="test")
    platform.up(STACK, timeout_s=90)
    try:
        status = platform.status(STACK)
        old = platform.webhook_secret(STACK)
        api = httpx.Client(base_url=status.api_url, timeout=30,
                           headers={"Authorization": f"Bearer {platform.api_token(STACK)}"})
        runpod = DataPlaneClient(platform.runpod_api_key(STACK), status.endpoint_id,
                                 base_url=status.runpod_endpoint_base)
        created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                      "inputs": {"prompt": "a lighthouse"}})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        runpod_job_id = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
        assert wait_until(lambda: runpod.status(runpod_job_id).status == "COMPLETED", 120), "the job never ran"
        # RunPod's outcome as it would deliver it; its delivery is what RunPod retries to the URL it was given.
        outcome = httpx.get(f"{status.runpod_endpoint_base}/{status.endpoint_id}/status/{runpod_job_id}",
                            headers={"Authorization": f"Bearer {platform.runpod_api_key(STACK)}"}, timeout=30).json()
        assert outcome["status"] == "COMPLETED"

        # The rotation, as the runbook says: previous = current, a new current, then a deploy of what runs.
        new = secrets.token_hex(32)
        d.secret_file("webhook_secret_previous").write_text(old + "\n")
        d.secret_file("webhook_secret").write_text(new + "\n")
        said: list[str] = []
        platform.up(STACK, progress=said.append)  # a running stack is left as it is: it says what applies them
        assert said[0] == f"{STACK}: already up" and len(said) == 2, said
        assert "secret files (secrets/api_token, secrets/webhook_secret" in said[1]
        assert f"goldgate reload {STACK}" in said[1]
        assert platform.deploy(STACK, image, timeout_s=120).image == image
        said.clear()
        platform.up(STACK, progress=said.append)
        assert said == [f"{STACK}: already up"]  # the service now runs on them

        hook_url = f"{status.api_url}/api/runpod/webhook"
        forged = httpx.post(hook_url, params={"job": job_id, "sig": webhook_signature(secrets.token_hex(32), job_id)},
                            json=outcome, timeout=30)
        assert forged.status_code == 401  # the webhook is still checked: a signature by neither secret is not one
        delivered = httpx.post(hook_url, params={"job": job_id, "sig": webhook_signature(old, job_id)},
                               json=outcome, timeout=30)
        assert delivered.status_code == 200 and delivered.json()["applied"] is True, delivered.text
        view = api.get(f"/api/status/{job_id}").json()
        assert view["status"] == "completed" and view["results"], view
        # New result URLs are signed with the new secret only.
        url = httpx.URL(view["results"][0]["url"])
        key, exp = url.path.removeprefix("/api/result/"), int(url.params["exp"])
        assert url.params["sig"] == result_signature(new, key, exp) != result_signature(old, key, exp)
        api.close()
    finally:
        platform.down(STACK)

    lines = [json.loads(line) for line in (d.logs_dir / "service.jsonl").read_text().splitlines()
             if line.startswith("{")]
    hooks = [x for x in lines if (x.get("http") or {}).get("path") == "/api/runpod/webhook"
             and x.get("job_id") == job_id]
    assert [(x["http"]["status"], (x.get("data") or {}).get("signed_with")) for x in hooks] == [
        (401, None), (200, "previous")], hooks
    for log in d.logs_dir.iterdir():  # neither secret in any of the stack's logs
        text = log.read_text(errors="replace")
        assert old not in text and new not in text, log.name
