"""Fixtures for the worker tests: the ComfyUI emulator, moto's S3 server on loopback, a worker runtime
wired to both, and a log capture that validates every line against schema v1."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer
from worker_harness import ACCESS_KEY, SECRET_KEY, LogCapture, bake_models, s3_client, worker_env

from goldgate.local.comfyui import ComfyUIEmulator
from images.worker.config import StorageConfig, load_config
from images.worker.handler import WorkerRuntime, build_runtime


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return bake_models(tmp_path / "models")


@pytest.fixture
def comfy_factory(tmp_path: Path) -> Iterator[Callable[..., ComfyUIEmulator]]:
    started: list[ComfyUIEmulator] = []

    def start(models: Path, **kwargs: Any) -> ComfyUIEmulator:
        kwargs.setdefault("log_stream", io.StringIO())
        emulator = ComfyUIEmulator(models, tmp_path / f"comfy-out-{len(started)}", **kwargs).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def comfy(models_dir: Path, comfy_factory: Callable[..., ComfyUIEmulator]) -> ComfyUIEmulator:
    emulator = comfy_factory(models_dir)
    assert emulator.wait_listening(10)
    return emulator


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()



@pytest.fixture(scope="session")
def _s3_admin(s3_endpoint: str) -> Any:
    """The client `storage` makes its buckets with, built once: a boto3 client costs ~50 ms of CPU to build
    (endpoint rules, event hooks) and holds no state between calls."""
    return s3_client(s3_endpoint)


@pytest.fixture
def storage(s3_endpoint: str, _s3_admin: Any) -> StorageConfig:
    bucket = f"results-{uuid.uuid4().hex[:12]}"
    _s3_admin.create_bucket(Bucket=bucket)
    return StorageConfig(s3_endpoint, bucket, ACCESS_KEY, SECRET_KEY)



@pytest.fixture
def logs() -> LogCapture:
    return LogCapture()


@pytest.fixture
def runtime_factory(storage: StorageConfig, logs: LogCapture) -> Callable[..., WorkerRuntime]:
    def make(comfy_url: str, models: Path, **extra: str) -> WorkerRuntime:
        config = load_config(worker_env(comfy_url, storage, models, **extra))
        return build_runtime(config, stream=logs, poll_interval_s=0.05)

    return make
