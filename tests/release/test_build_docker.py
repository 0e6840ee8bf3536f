"""Build, push and tag immutability against a real Docker engine and a registry on 127.0.0.1, and the real
worker Dockerfile's model layers under the classic builder `goldgate build` drives.

CI (.ci/run) starts dockerd and a registry and exports DOCKER_HOST and GOLDGATE_TEST_REGISTRY; here
the test skips without them, under CI=true it fails."""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from ci_policy import require

from goldgate.release.build import WORKER_DIR, ReleaseIdentity, TagConflict, build_docker, manifest_sha256
from goldgate.release.ledger import Ledger

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release" / "hermetic"


@pytest.fixture(scope="module")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception:  # noqa: BLE001 -- any failure means no usable engine
        client = None
    require(client is not None, "a Docker engine (DOCKER_HOST)")
    yield client
    client.close()


@pytest.fixture(scope="module")
def engine(docker_client):
    client = docker_client
    registry = os.environ.get("GOLDGATE_TEST_REGISTRY", "")
    require(bool(registry), "a registry on 127.0.0.1 (GOLDGATE_TEST_REGISTRY, e.g. 127.0.0.1:5000)")
    try:
        httpx.get(f"http://{registry}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError:
        require(False, f"a registry answering at http://{registry}/v2/")
    return client, registry


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


def test_a_rebuild_of_the_same_source_on_a_fresh_engine_takes_the_image_pushed_under_the_tag(
        engine, tmp_path: Path) -> None:
    # "Re-run all jobs" builds the run's commit again on a fresh runner: the classic builder stamps new creation
    # times, so the rebuild is other bytes under the same tag. Before, `goldgate build` stopped with a TagConflict
    # telling the operator to commit a change, and no re-run of that run could get past it.
    client, registry = engine
    repo = f"{registry}/goldgate-rerun-{uuid.uuid4().hex[:10]}"
    ctx = context(tmp_path, "the run's commit\n")
    ident = ReleaseIdentity("2026.11.0", uuid.uuid4().hex + "0" * 8, manifest_sha256(ctx))
    first = build_docker(client, ctx, repo, ident)
    client.images.remove(client.images.get(first.image).id, force=True)   # the re-run's runner holds none of it
    seen: list[str] = []
    again = build_docker(client, ctx, repo, ident, progress=seen.append)
    assert again.image == first.image and again.release_id == first.release_id and again.reused
    assert client.images.get_registry_data(f"{repo}:{ident.tag}").id == first.digest
    assert any("pushed from this exact source" in line for line in seen), seen


def test_a_different_source_under_a_pushed_tag_is_refused_on_a_fresh_engine_too(engine, tmp_path: Path) -> None:
    # A dirty checkout of the same commit gives the same tag: the image pushed under it is not this source's.
    client, registry = engine
    repo = f"{registry}/goldgate-dirty-{uuid.uuid4().hex[:10]}"
    ident = ReleaseIdentity("2026.11.0", uuid.uuid4().hex + "0" * 8, manifest_sha256(context(tmp_path, "x\n")))
    first = build_docker(client, context(tmp_path, "committed\n"), repo, ident)
    client.images.remove(client.images.get(first.image).id, force=True)
    with pytest.raises(TagConflict, match="was built from other source"):
        build_docker(client, context(tmp_path, "edited, not committed\n"), repo, ident)
    assert client.images.get_registry_data(f"{repo}:{ident.tag}").id == first.digest


# -- the real worker Dockerfile under the classic builder ---------------------------------------------------

MODEL = b"not really a checkpoint " * 2048
FETCH = re.compile(r"^RUN python -B /opt/goldgate/fetch_model.py (\S+) (\S+) (\S+) (\S+)$", re.MULTILINE)


def _shared_libraries(binaries: list[Path]) -> set[Path]:
    found: set[Path] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        found.update(Path(m.group(1)) for m in re.finditer(r"(/\S+) \(0x", out))
    return found


def _base_context() -> io.BytesIO:
    """A stand-in for the ComfyUI base: this machine's python and bash with their libraries, nothing pulled."""
    python = Path(os.path.realpath(sys.executable))
    stdlib, dynload = Path(sysconfig.get_path("stdlib")), Path(sysconfig.get_config_var("DESTSHARED"))
    bash = Path(os.path.realpath("/bin/bash"))
    unneeded = {"test", "tests", "site-packages", "dist-packages", "__pycache__", "idlelib", "tkinter", "ensurepip"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = set(info.name.split("/"))
        return None if parts & unneeded or any(p.startswith("config-") for p in parts) else info

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        tar.add(python, "rootfs/usr/local/bin/python")
        tar.add(bash, "rootfs/bin/bash")
        for tree in [stdlib] + ([] if stdlib in dynload.parents else [dynload]):
            tar.add(tree, f"rootfs{tree}", filter=keep)
        for lib in _shared_libraries([python, bash, *dynload.glob("*.so")]):
            tar.add(os.path.realpath(lib), f"rootfs{lib}")
        dockerfile = b"FROM scratch\nCOPY rootfs/ /\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    return context


@pytest.fixture(scope="module")
def base_image(docker_client) -> Iterator[str]:
    tag = f"goldgate-test-base:{uuid.uuid4().hex[:10]}"
    docker_client.images.build(fileobj=_base_context(), custom_context=True, tag=tag, rm=True, forcerm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


class _Model(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(MODEL)))
        self.end_headers()
        self.wfile.write(MODEL)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def model_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.safetensors"
    server.shutdown()
    server.server_close()


def _up_to_first_model(tmp_path: Path, url: str, pin: str | None) -> tuple[Path, str]:
    """The worker context, its Dockerfile cut after the first model layer, that model served from `url`
    (`pin` None keeps the Dockerfile's own sha256, which the served bytes do not have)."""
    ctx = tmp_path / f"worker-{uuid.uuid4().hex[:6]}"
    shutil.copytree(WORKER_DIR, ctx, ignore=shutil.ignore_patterns("__pycache__"))
    text = (ctx / "Dockerfile").read_text()
    first = FETCH.search(text)
    assert first, "the worker Dockerfile bakes no model with fetch_model.py"
    line = f"RUN python -B /opt/goldgate/fetch_model.py {url} {pin or first.group(2)} {len(MODEL)} {first.group(4)}\n"
    (ctx / "Dockerfile").write_text(text[:first.start()] + line)
    return ctx, first.group(4)


def test_the_worker_dockerfile_bakes_a_model_under_the_classic_builder(docker_client, base_image, model_url,
                                                                        tmp_path: Path) -> None:
    ctx, dest = _up_to_first_model(tmp_path, model_url, hashlib.sha256(MODEL).hexdigest())
    image, _ = docker_client.images.build(path=str(ctx), buildargs={"BASE_IMAGE": base_image},
                                          network_mode="host", rm=True, forcerm=True)
    container = docker_client.containers.create(image.id, ["true"])
    try:
        stream, _ = container.get_archive(dest)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            [member] = tar.getmembers()
            content = tar.extractfile(member).read()
    finally:
        container.remove(force=True)
        docker_client.images.remove(image.id, force=True)
    assert content == MODEL
    assert (member.mode & 0o777, member.uid, member.gid) == (0o644, 0, 0)  # root's, readable by the worker user


def test_a_model_whose_sha256_differs_from_its_pin_fails_the_worker_build(docker_client, base_image, model_url,
                                                                          tmp_path: Path) -> None:
    import docker.errors

    ctx, _ = _up_to_first_model(tmp_path, model_url, None)
    with pytest.raises(docker.errors.BuildError) as failed:
        docker_client.images.build(path=str(ctx), buildargs={"BASE_IMAGE": base_image}, network_mode="host",
                                   rm=True, forcerm=True)
    log = "".join(str(line.get("stream", "")) for line in failed.value.build_log)
    assert f"has sha256 {hashlib.sha256(MODEL).hexdigest()}, models.yaml pins" in log


def test_a_rebuild_from_scratch_gives_the_same_model_layer(docker_client, base_image, model_url,
                                                           tmp_path: Path) -> None:
    # A fresh CI builder has no cache: the model layer must come out byte for byte the same (the registry then
    # already holds it and a multi-GB model is not pushed again), even though the layers before it differ.
    ctx, _ = _up_to_first_model(tmp_path, model_url, hashlib.sha256(MODEL).hexdigest())
    layers = []
    for stamp in (1_700_000_000, 1_800_000_000):
        os.utime(ctx / "fetch_model.py", (stamp, stamp))  # a fresh checkout: another mtime for the COPY
        image, _ = docker_client.images.build(path=str(ctx), buildargs={"BASE_IMAGE": base_image},
                                              network_mode="host", rm=True, forcerm=True, nocache=True)
        layers.append(image.attrs["RootFS"]["Layers"])
        docker_client.images.remove(image.id, force=True)
    (script_a, model_a), (script_b, model_b) = (built[-2:] for built in layers)
    assert script_a != script_b
    assert model_a == model_b
