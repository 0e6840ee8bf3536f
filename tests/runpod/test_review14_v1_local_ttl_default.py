"""A local stack's RunPod keeps RunPod's own default ttl (24 h) for a job sent without policy.ttl, not the stack's
ttl_ms: the service sends the stack's ttl itself, and a /run that stopped sending it must not look right locally
while the cloud keeps the job a day."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from goldgate.local import runpod_embed
from goldgate.runpod import ControlPlaneClient, EndpointConfig
from goldgate.spec import load_local

API_KEY = "rp_local_ttl_key_0123456789"
IMG = "local/worker@sha256:" + "6" * 64


def test_a_job_without_policy_ttl_outlives_the_stacks_ttl_as_on_runpod(tmp_path: Path) -> None:
    spec = load_local("staging")
    assert spec.endpoint.ttl_ms < 86_400_000  # the stack's ttl is shorter than RunPod's default
    emu = runpod_embed.start(spec, tmp_path / "home", API_KEY, tmp_path / "logs", tmp_path / "workers")
    try:
        with ControlPlaneClient(API_KEY, emu.api_base) as control:
            ep = control.create_endpoint(EndpointConfig(name="ttl", image=IMG, gpu_pools=("ADA_24",), workers_max=0))
        offset = [0.0]
        emu.backend.clock = lambda: time.monotonic() + offset[0]  # the emulator's clock, moved on by the test
        with httpx.Client(base_url=f"{emu.endpoint_base}/{ep.id}",
                          headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            job = http.post("/run", json={"input": {"prompt": "x"}}).json()
            offset[0] = spec.endpoint.ttl_ms / 1000 + 60  # past the stack's ttl, far short of 24 h
            emu.backend.expire()
            answer = http.get(f"/status/{job['id']}")
            assert answer.status_code == 200 and answer.json()["status"] == "IN_QUEUE"
            offset[0] = 86_400 + 60  # past RunPod's default: gone, as on RunPod
            emu.backend.expire()
            assert http.get(f"/status/{job['id']}").status_code == 404
    finally:
        emu.stop()
