"""A worker's RunPod environment describes its endpoint: RUNPOD_GPU_COUNT is the endpoint's gpu.count (what
RunPod gives each worker), so a handler that sizes itself by it behaves locally as it will in the cloud."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from emulator_harness import API_KEY, wait_for

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.runpod import ControlPlaneClient, EndpointConfig, EndpointPatch

IMG = "local/worker@sha256:" + "3" * 64


def test_a_worker_is_told_the_gpu_count_of_its_endpoint(tmp_path: Path) -> None:
    started: list[dict[str, str]] = []
    lock = threading.Lock()

    def launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        with lock:
            started.append(dict(env))
        return [sys.executable, "-c", "import time; time.sleep(120)"], env  # a worker that only needs to exist

    def counts() -> list[str]:
        with lock:
            return [env.get("RUNPOD_GPU_COUNT", "") for env in started]

    config = EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs", workers_dir=tmp_path / "workers",
                            worker_stop_grace_s=0.5)
    with RunPodEmulator(config, launcher=launcher) as emu, ControlPlaneClient(API_KEY, emu.api_base) as control:
        ep = control.create_endpoint(EndpointConfig(name="two-gpus", image=IMG, gpu_pools=("ADA_24",),
                                                    gpu_count=2, workers_min=1, workers_max=1))
        assert wait_for(counts, "a worker to start") == ["2"]
        # a new count reaches the workers started after it (an image change cycles the old one)
        control.update_endpoint(ep.id, EndpointPatch(gpu_count=4, image=IMG.replace("3", "4")))
        assert wait_for(lambda: counts()[1:], "the replacement worker to start") == ["4"]
