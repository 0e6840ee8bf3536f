"""Build, push and tag immutability against a real Docker engine and a registry on 127.0.0.1.

CI (.ci/run) starts dockerd and a registry and exports DOCKER_HOST and GOLDGATE_TEST_REGISTRY; here
the test skips without them, under CI=true it fails."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from ci_policy import require

from goldgate.release.build import ReleaseIdentity, TagConflict, build_docker, manifest_sha256
from goldgate.release.ledger import Ledger

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release" / "hermetic"


@pytest.fixture(scope="module")
def engine():
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception:  # noqa: BLE001 -- any failure means no usable engine
        client = None
    require(client is not None, "a Docker engine (DOCKER_HOST)")
    registry = os.environ.get("GOLDGATE_TEST_REGISTRY", "")
    require(bool(registry), "a registry on 127.0.0.1 (GOLDGATE_TEST_REGISTRY, e.g. 127.0.0.1:5000)")
    try:
        httpx.get(f"http://{registry}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError:
        require(False, f"a registry answering at http://{registry}/v2/")
    yield client, registry
    client.close()


def context(tmp_path: Path, payload: str) -> Path:
    ctx = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    shutil.copytree(FIXTURE, ctx)
    (ctx / "payload.txt").write_text(payload)
    (ctx / "models.yaml").write_text("schema: 1\nmodels: []\n")
    return ctx


def test_build_pushes_resolves_the_digest_and_refuses_to_repoint_the_tag(engine, tmp_path: Path) -> None:
    client, registry = engine
    repo = f"{registry}/goldgate-test-{uuid.uuid4().hex[:10]}"
    first_ctx = context(tmp_path, "release one\n")
    ident = ReleaseIdentity("2026.11.0", uuid.uuid4().hex + "0" * 8, manifest_sha256(first_ctx))
    seen: list[str] = []
    built = build_docker(client, first_ctx, repo, ident, progress=seen.append)
    assert built.image == f"{repo}@{built.digest}" and built.digest.startswith("sha256:")
    assert built.release_id == ident.tag and not built.reused
    # The registry serves exactly that manifest under the immutable tag.
    resp = httpx.get(f"http://{registry}/v2/{repo.split('/', 1)[1]}/manifests/{ident.tag}", timeout=10,
                     headers={"accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert resp.status_code == 200 and resp.headers["docker-content-digest"] == built.digest
    assert client.images.get_registry_data(built.image).id == built.digest

    # Same content again: nothing to push, same digest.
    again = build_docker(client, first_ctx, repo, ident)
    assert again.reused and again.digest == built.digest

    # Different content under the same tag: refused before pushing, the registry still holds the first.
    with pytest.raises(TagConflict, match="tags are immutable"):
        build_docker(client, context(tmp_path, "release two, different\n"), repo, ident)
    assert client.images.get_registry_data(f"{repo}:{ident.tag}").id == built.digest


def test_goldgate_build_cli_records_the_pushed_digest(engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from goldgate.cli import main

    _, registry = engine
    repo = f"{registry}/goldgate-cli-{uuid.uuid4().hex[:10]}"
    ctx = context(tmp_path, f"cli {uuid.uuid4()}\n")
    code = main(["build", "--home", str(tmp_path / "home"), "--context", str(ctx), "--repo", repo,
                 "--workflow-version", "2026.11.0", "--json"])
    assert code == 0
    out = capsys.readouterr().out
    [entry] = Ledger(tmp_path / "home").entries()
    assert entry.kind == "build" and entry.get("image") in out and entry.get("image").startswith(repo + "@sha256:")
