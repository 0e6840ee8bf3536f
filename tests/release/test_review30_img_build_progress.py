"""`goldgate build --repo` says the build's output as the engine sends it. The worker image bakes tens of GB of
models: the build said nothing for the hour that takes, and when a step failed it said only the engine's "returned a
non-zero code", not what the step printed (fetch_model's refused sha256, pip's reason). Against a real Docker engine
and a registry on 127.0.0.1 (test_build_docker.py's fixtures).

CI (.ci/run) starts dockerd and a registry and exports DOCKER_HOST and GOLDGATE_TEST_REGISTRY; here the test skips
without them, under CI=true it fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_build_docker import _base_context, context, docker_client, engine  # noqa: F401 -- fixtures

from goldgate.release.build import BuildFailed, ReleaseIdentity, build_docker, manifest_sha256


def _identity(ctx: Path) -> ReleaseIdentity:
    return ReleaseIdentity("2026.11.0", uuid.uuid4().hex + "00000000", manifest_sha256(ctx))


def test_the_build_output_is_said_as_it_comes_before_the_push(engine, tmp_path: Path) -> None:  # noqa: F811
    client, registry = engine
    ctx = context(tmp_path, "progress")
    said: list[str] = []
    result = build_docker(client, ctx, f"{registry}/goldgate-progress-{uuid.uuid4().hex[:8]}", _identity(ctx),
                          progress=said.append)
    steps = [line for line in said if line.startswith("build: Step ")]
    assert steps and steps[0].startswith("build: Step 1/") and "FROM scratch" in steps[0], said
    pushing = next(i for i, line in enumerate(said) if line.startswith("pushing "))
    assert said.index(steps[-1]) < pushing
    assert result.digest.startswith("sha256:")


@pytest.fixture(scope="module")
def base_image(docker_client) -> Iterator[str]:  # noqa: F811
    tag = f"goldgate-test-base:{uuid.uuid4().hex[:10]}"
    docker_client.images.build(fileobj=_base_context(), custom_context=True, tag=tag, rm=True, forcerm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


def test_a_failed_step_s_own_words_are_said_not_only_its_exit_code(engine, base_image: str,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    client, registry = engine
    ctx = tmp_path / "failing"
    ctx.mkdir()
    (ctx / "models.yaml").write_text("schema: 1\nmodels: []\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        'SHELL ["/bin/bash", "-c"]\n'   # the stand-in base has bash, as the worker's SHELL asks, and no /bin/sh
        "RUN python -c \"import sys; print('fetch_model: the pin is not this file'); sys.exit(3)\"\n")
    said: list[str] = []
    with pytest.raises(BuildFailed, match="returned a non-zero code: 3"):
        build_docker(client, ctx, f"{registry}/goldgate-failing-{uuid.uuid4().hex[:8]}", _identity(ctx),
                     progress=said.append)
    assert "build: fetch_model: the pin is not this file" in said, said
