"""A burst of creates reaches the local RunPod whole. The service opens up to 64 connections to RunPod at once (its
httpx pool, service/httpx_transport.py); the emulator listened with socketserver's default backlog of 5, so under a
burst the kernel dropped the connections its accept queue had no room for, and `POST /api/queue/create` answered 503
`runpod_unavailable` with an unknown outcome (the job failed, its key held until settle_by) for work RunPod never
saw: 16 to 31 of 60 creates at once, in 4 of 5 rounds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator

BURST = 64  # service/httpx_transport.py: max_connections=64
ROUNDS = 3


async def _burst(url: str) -> list[str]:
    # one pool of BURST connections, as the service's: a burst of requests opens them all at once
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=BURST)) as client:
        async def one() -> str:
            try:
                answer = await client.post(url, json={"input": {"x": "y" * 2000}},
                                           headers={"Authorization": "Bearer rp_test_key"})
            except httpx.TransportError as exc:
                return type(exc).__name__
            return str(answer.status_code)

        return list(await asyncio.gather(*(one() for _ in range(BURST))))


def test_64_connections_at_once_to_the_local_runpod_are_all_answered(tmp_path: Path) -> None:
    emulator = RunPodEmulator(EmulatorConfig(api_key="rp_test_key", logs_dir=tmp_path / "logs")).start()
    try:
        url = f"{emulator.base_url}/v2/no-such-endpoint/run"
        for round_ in range(ROUNDS):
            answers = asyncio.run(_burst(url))
            failed = [a for a in answers if not a.isdigit()]
            assert not failed, f"round {round_ + 1}: {len(failed)} of {BURST} connections failed: {sorted(set(failed))}"
            # every request reached the emulator's app: an endpoint it does not know is its own 404
            assert set(answers) == {"404"}, sorted(set(answers))
    finally:
        emulator.stop()
