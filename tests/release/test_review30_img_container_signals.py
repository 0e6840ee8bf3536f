"""The worker's start.sh as a container's first process (PID 1) on a real Docker engine, stopped the way RunPod stops
a worker: SIGTERM, then SIGKILL once the grace period is over. ComfyUI, preflight and the handler are stand-ins (the
real ones need a GPU base image, which cannot be pulled here); start.sh is the image's own.

CI (.ci/run) starts dockerd and exports DOCKER_HOST; here the test skips without it, under CI=true it fails."""

from __future__ import annotations

import io
import os
import shutil
import signal
import tarfile
import time
import uuid
from collections.abc import Iterator

import pytest
from ci_policy import require
from test_build_docker import _base_context

from goldgate.release.build import WORKER_DIR

# Each stand-in says it started and, on SIGTERM, that it stopped, in /app/events. Preflight runs until it is stopped:
# one that reads every model's header, or hashes tens of GB with --verify-sha256, while RunPod scales the worker down.
STAND_IN = """\
import signal, sys, time

def say(what):
    with open("/app/events", "a") as f:
        f.write(what + "\\n")

def stop(*_):
    say("{name}-stopped")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
say("{name}-started")
while True:
    time.sleep(0.05)
"""
DOCKERFILE = """\
FROM {base}
COPY env /usr/bin/env
COPY app/ /app/
COPY start.sh /opt/goldgate/start.sh
ENV PYTHON=python COMFY_DIR=/app APP_DIR=/app WORKER_PKG=standin
CMD ["/opt/goldgate/start.sh"]
"""
GRACE_S = 20   # docker stop's wait between SIGTERM and SIGKILL: long enough for the stand-ins to stop on SIGTERM


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception:  # noqa: BLE001 -- any failure means no usable engine
        client = None
    require(client is not None, "a Docker engine (DOCKER_HOST)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def worker_like(docker_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = f"goldgate-test-base:{uuid.uuid4().hex[:10]}"
    docker_client.images.build(fileobj=_base_context(), custom_context=True, tag=base, rm=True, forcerm=True)
    ctx = tmp_path_factory.mktemp("pid1")
    (ctx / "app" / "standin").mkdir(parents=True)
    (ctx / "app" / "main.py").write_text(STAND_IN.format(name="comfy"))
    (ctx / "app" / "standin" / "__init__.py").write_text("")
    (ctx / "app" / "standin" / "preflight.py").write_text(STAND_IN.format(name="preflight"))
    (ctx / "app" / "standin" / "handler.py").write_text(STAND_IN.format(name="handler"))
    shutil.copy2(WORKER_DIR / "start.sh", ctx / "start.sh")
    shutil.copy2(os.path.realpath("/usr/bin/env"), ctx / "env")   # start.sh's `#!/usr/bin/env bash`
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    tag = f"goldgate-test-pid1:{uuid.uuid4().hex[:10]}"
    docker_client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True)
    yield tag
    docker_client.images.remove(tag, force=True)
    docker_client.images.remove(base, force=True)


def _events(container) -> list[str]:
    code, out = container.exec_run(["python", "-c", "print(open('/app/events').read())"])
    return out.decode().split() if code == 0 else []


def test_a_worker_stopped_while_preflight_runs_stops_preflight_too_and_says_why(docker_client, worker_like: str) -> None:
    # Before: no SIGTERM trap until the handler ran. bash exited on the signal and its EXIT trap stopped ComfyUI, but
    # preflight (run in the foreground) was SIGKILLed with the container, and no line said why the worker ended.
    container = docker_client.containers.run(worker_like, detach=True, network_mode="none")
    try:
        deadline = time.monotonic() + 60   # the stand-ins start at once; a bound, so a broken start cannot hang
        while not {"comfy-started", "preflight-started"} <= set(_events(container)):
            container.reload()
            assert container.status == "running", container.logs().decode()
            assert time.monotonic() < deadline, f"the stand-ins did not start: {_events(container)}"
            time.sleep(0.1)
        container.stop(timeout=GRACE_S)
        container.reload()
        state = container.attrs["State"]
        logs = container.logs().decode()
        assert state["ExitCode"] == 128 + signal.SIGTERM, (state, logs)
        assert "start.sh: SIGTERM before the handler started" in logs, logs
        # The stand-ins' last words, read from the stopped container's file system.
        stream, _ = container.get_archive("/app/events")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            happened = tar.extractfile(tar.getmembers()[0]).read().decode().split()
        assert "comfy-stopped" in happened and "preflight-stopped" in happened, happened
        assert "handler-started" not in happened, happened
    finally:
        container.remove(force=True)
