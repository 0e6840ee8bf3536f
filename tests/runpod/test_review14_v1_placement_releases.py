"""A change of where and on what an endpoint's workers run (gpu count, pools, data centers, volumes) is a release,
as REST v2 reports it (its release diffs name `gpuCount` and `locations`): a running worker keeps the GPUs it was
started with, is stale until it is replaced, and the rollout says so. Tuning (workers, scaling, timeout) is not."""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx
import pytest
from emulator_harness import wait_for

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod.backend import RunPodBackend, StartWorker
from goldgate.local.runpod.openapi import component, schema_errors
from goldgate.local.runpod.responses import releases, workers
from goldgate.runpod import ControlPlaneClient, EndpointConfig, EndpointPatch

IMG = "local/worker@sha256:" + "5" * 64
CREATE = {"name": "placed", "type": "QUEUE", "image": IMG, "gpu": {"pools": ["ADA_24"], "count": 1},
          "workers": {"min": 1, "max": 2, "idleTimeout": 5}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}


def test_a_gpu_count_change_rolls_out_and_the_busy_worker_keeps_its_gpus_until_replaced(make_stack, tmp_path) -> None:
    stack = make_stack()
    ep = stack.endpoint(image=IMG, workers_min=1, workers_max=1, gpu_count=1)
    jobs = stack.jobs(ep.id)
    wait_for(lambda: any(w.status == "IDLE" for w in stack.control.list_workers(ep.id).workers), "a worker idle")
    held = jobs.run({"hold": str(tmp_path)})  # busy until released, however slow the machine
    wait_for(lambda: jobs.status(held.id).status == "IN_PROGRESS", "the held job to start")

    stack.control.update_endpoint(ep.id, EndpointPatch(gpu_pools=("ADA_24",), gpu_count=2))
    history = stack.control.list_releases(ep.id)
    assert history.endpoint_version == 2 and history.rollout.in_progress
    assert "gpu.count" in {d.field for d in history.latest.diff}
    [old] = stack.control.list_workers(ep.id).workers
    assert old.is_stale and old.gpu_count == 1  # the GPUs it was placed with, not the endpoint's new count

    (tmp_path / "release").touch()
    stack.finished(jobs, held.id)

    def converged() -> list[Any]:
        listed = stack.control.list_workers(ep.id).workers
        return listed if listed and all(w.version == 2 and not w.is_stale for w in listed) else []

    assert [w.gpu_count for w in wait_for(converged, "a worker on the new release")] == [2]


def _backend() -> tuple[RunPodBackend, str]:
    backend = RunPodBackend(EmulatorConfig(api_key="k"))
    ep = backend.create_endpoint(CREATE)
    [start] = backend.plan()  # workers.min: one worker on release 1
    assert isinstance(start, StartWorker) and start.gpu_count == 1
    return backend, ep.id


@pytest.mark.parametrize("patch", [
    {"gpu": {"count": 2}},
    {"gpu": {"pools": ["AMPERE_24"]}},
    {"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA L4"]}},
    {"gpu": {"minCudaVersion": "12.4"}},
    {"dataCenterIds": ["EU-RO-1"]},
    {"networkVolumes": ["vol0123456789"]},
])
def test_a_placement_change_is_a_release_that_makes_running_workers_stale(patch: dict[str, Any]) -> None:
    backend, eid = _backend()
    ep = backend.update_endpoint(eid, patch)
    assert ep.version == 2
    with backend.lock:
        listed, history = workers(backend, ep, "NVIDIA GeForce RTX 4090"), releases(backend, ep)
    assert [w["isStale"] for w in listed["workers"]] == [True]
    assert history["rollout"]["inProgress"] is True and history["releases"][0]["diff"]
    assert schema_errors(component("ListEndpointWorkersResponse"), listed) == []
    assert schema_errors(component("ListEndpointReleasesResponse"), history) == []


@pytest.mark.parametrize("patch", [
    {"workers": {"max": 3}},
    {"scaling": {"type": "QUEUE_DELAY", "queueDelay": 8}},
    {"timeout": 900_000},
    {"name": "renamed"},
    {"gpu": {"pools": ["ADA_24"], "count": 1}},  # restating the selection changes nothing
])
def test_tuning_or_restating_creates_no_release(patch: dict[str, Any]) -> None:
    backend, eid = _backend()
    assert backend.update_endpoint(eid, patch).version == 1


@pytest.mark.parametrize(("gpu", "card"), [
    ({"pools": ["AMPERE_80"]}, "NVIDIA A100 80GB PCIe"),
    ({"pools": ["ADA_24"], "excludedTypes": ["NVIDIA GeForce RTX 4090"]}, "NVIDIA L4"),
    ({"pools": ["ADA_24"]}, "NVIDIA GeForce RTX 4090"),  # the emulator's own card, when the selection holds it
])
def test_a_worker_is_placed_on_a_card_of_its_endpoints_selection(tmp_path, gpu: dict[str, Any], card: str) -> None:
    started: list[dict[str, str]] = []
    lock = threading.Lock()

    def launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        with lock:
            started.append(dict(env))
        return [sys.executable, "-c", "import time; time.sleep(120)"], env  # a worker that only needs to exist

    config = EmulatorConfig(api_key="k" * 24, logs_dir=tmp_path / "logs", workers_dir=tmp_path / "workers",
                            worker_stop_grace_s=0.5, gpu_type="NVIDIA GeForce RTX 4090")
    with RunPodEmulator(config, launcher=launcher) as emu, ControlPlaneClient("k" * 24, emu.api_base) as control:
        ep = control.create_endpoint(EndpointConfig(name="placed", image=IMG, gpu_pools=tuple(gpu["pools"]),
                                                    workers_min=1, workers_max=1))
        if "excludedTypes" in gpu:  # the typed client sends no exclusions: as an operator would, by hand
            with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer " + "k" * 24}) as http:
                assert http.patch(f"/v2/serverless/{ep.id}", json={"gpu": gpu}).status_code == 200
            wait_for(lambda: all(w.version == 2 for w in control.list_workers(ep.id).workers), "the re-placed worker")
        listed = wait_for(lambda: control.list_workers(ep.id).workers, "a worker")
        assert [w.gpu_type_id for w in listed] == [card]
        (worker,) = listed

        def launched() -> list[dict[str, str]]:  # the worker is listed before its process is started
            with lock:
                return [env for env in started if env.get("RUNPOD_POD_ID") == worker.id]

        take_url = wait_for(launched, "the listed worker's process")[-1]["RUNPOD_WEBHOOK_GET_JOB"]
        assert take_url.endswith("?gpu=" + card.replace(" ", "+"))
