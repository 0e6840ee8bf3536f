"""What a revocation applied by a restart costs on a local stack (docs/RUNBOOK.md, "Add or revoke a client": PROD's
only way, `goldgate down && goldgate up`, and STAGING's other one): the stop ends the local RunPod's jobs in flight,
every client's and the API token's, not only the revoked client's. `goldgate down` names each of them, `goldgate
stuck` lists them once the stack is up, and a recovery settles each as failed ("RunPod has no record"); the revoked
token is answered 401 and the other client is served again. The jobs are held mid-queue by the ComfyUI emulator's
render gate (COMFY_EMULATOR_HOLD_DIR without its release file), so nothing here waits on a clock."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from ci_policy import needs
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import client_tokens, image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "held"}}


def _create(api: httpx.Client, token: str) -> httpx.Response:
    return api.post("/api/queue/create", json=CREATE, headers={"Authorization": f"Bearer {token}"})


def test_the_restart_that_applies_a_revocation_ends_every_clients_jobs_in_flight_and_names_each(home, capsys):
    gate = home / "hold"
    gate.mkdir()  # no `release` file in it: every render waits, so each job stays in flight until the stop
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1,
                                                               "env": {"COMFY_EMULATOR_HOLD_DIR": str(gate)}},
                                               staging={}))
    d = StackDir(home, STACK)
    d.pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    web, batch = client_tokens.add_client(d, "web"), client_tokens.add_client(d, "batch")
    platform.up(STACK, timeout_s=90)
    said: list[str] = []
    try:
        with httpx.Client(base_url=platform.status(STACK).api_url, timeout=30) as api:
            made = {who: _create(api, token) for who, token in
                    (("web", web), ("batch", batch), ("api", platform.api_token(STACK)))}
            assert all(r.status_code == 202 for r in made.values()), {k: r.text for k, r in made.items()}
        jobs = {who: r.json()["job_id"] for who, r in made.items()}

        client_tokens.revoke_client(d, "batch")  # the runaway; then its apply step, the restart
        platform.down(STACK, progress=said.append)
        platform.up(STACK, timeout_s=90)
        with httpx.Client(base_url=platform.status(STACK).api_url, timeout=30) as api:
            revoked, served = _create(api, batch), _create(api, web)

            capsys.readouterr()
            assert main(["stuck", STACK, "--older-than", "0", "--json", "--home", str(home)]) == 1
            stuck = {j["id"] for j in json.loads(capsys.readouterr().out)["jobs"]}
            assert main(["recover", jobs["web"], "--stack", STACK, "--home", str(home)]) == 0, capsys.readouterr()
            settled = api.get(f"/api/status/{jobs['web']}", headers={"Authorization": f"Bearer {web}"}).json()
    finally:
        platform.down(STACK)

    ended = " ".join(x for x in said if "were still queued or running" in x)
    assert all(job in ended for job in jobs.values()), said  # not only the revoked client's: every one in flight
    assert set(jobs.values()) <= stuck
    assert (settled["status"], settled["client"]) == ("failed", "web"), settled
    assert "no record" in json.dumps(settled["error"]), settled
    assert revoked.status_code == 401 and served.status_code == 202, (revoked.text, served.text)
