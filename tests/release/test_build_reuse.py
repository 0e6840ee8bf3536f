"""Build reuse: `build_docker` takes the image already pushed under the tag, without building, only when its
`dev.goldgate.source-sha256` label is this source's: the build context exactly as docker is sent it (after
`.dockerignore`) and the Dockerfile's bytes, wherever it lies. A pull that fails is named, never taken for "other
source". No Docker engine runs here, so the engine and its registry are a stand-in that answers the calls
`build_docker` makes (ask the registry, pull, read the pulled image, build); test_build_docker.py has the real
engine's reuse and refusal."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from goldgate.errors import GoldgateError
from goldgate.release.build import (
    SOURCE_LABEL,
    WORKER_DIR,
    BuildFailed,
    ReleaseIdentity,
    TagConflict,
    build_docker,
    manifest_sha256,
    source_sha256,
)

REPO = "127.0.0.1:5000/goldgate-worker"
PUSHED = "sha256:" + "1" * 64
BUILT = "e" * 12   # the short id the build stream's last line names


def _engine(built: list[str], labels: dict[str, str] | None = None, pull_error: str | None = None,
            stream_error: str | None = None) -> Any:
    """The tag already names PUSHED in the registry. Pulling it fails with `pull_error` (the engine's answer) or
    `stream_error` (a line of the pull stream, as a failed layer download reports), or gives an image with
    `labels`. A build records its source label and gives an image that was never pushed."""
    pulled: list[str] = []

    def api_pull(repository: str, tag: str | None = None, **_kw: Any) -> Any:
        assert f"{repository}@{tag}" == f"{REPO}@{PUSHED}"
        if pull_error:
            raise docker.errors.APIError(pull_error, explanation=pull_error)
        if stream_error:
            return iter([{"status": "Pulling fs layer", "id": "0a1b"},
                         {"errorDetail": {"message": stream_error}, "error": stream_error}])
        pulled.append(f"{repository}@{tag}")
        return iter([{"status": f"Digest: {tag}"}])

    def get(image: str) -> Any:
        if image == BUILT:
            return SimpleNamespace(id="sha256:" + BUILT, attrs={"RepoDigests": []})
        if image not in pulled:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return SimpleNamespace(labels=labels)

    def pull(image: str) -> Any:   # the SDK's images.pull: drains the stream, ignoring its errors, then gets
        repository, _, tag = image.partition("@")
        for _line in api_pull(repository, tag=tag):
            pass
        return get(image)

    def api_build(**kwargs: Any) -> Any:   # the engine's build stream, as the classic builder ends it
        built.append(kwargs["labels"][SOURCE_LABEL])
        return iter([{"stream": "Step 1/1 : FROM scratch\n"}, {"stream": f"Successfully built {BUILT[:12]}\n"}])

    return SimpleNamespace(api=SimpleNamespace(pull=api_pull, build=api_build),
                           images=SimpleNamespace(get_registry_data=lambda _ref: SimpleNamespace(id=PUSHED),
                                                  pull=pull, get=get))


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "worker"
    ctx.mkdir()
    (ctx / "handler.py").write_text("print('the committed handler')\n")
    (ctx / "models.yaml").write_text("models: []\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY handler.py /handler.py\n")
    return ctx


def _identity(ctx: Path) -> ReleaseIdentity:
    return ReleaseIdentity("2026.11.0", "c" * 40, manifest_sha256(ctx))


def test_the_image_pushed_from_this_source_is_taken_without_building(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    built: list[str] = []
    result = build_docker(_engine(built, labels={SOURCE_LABEL: source_sha256(ctx)}), ctx, REPO, _identity(ctx))
    assert (result.image, result.reused, built) == (f"{REPO}@{PUSHED}", True, [])


def test_an_edited_dockerfile_outside_the_context_is_not_taken_for_the_pushed_image(tmp_path: Path) -> None:
    # `goldgate build --dockerfile ../Dockerfile.gpu`: docker reads a Dockerfile outside the context too. An edit to
    # it (same commit, same tag) is other source: the tag check refuses it (before building it), rather than the
    # image pushed from the old Dockerfile being reported as this build (`reused: true`).
    ctx = _context(tmp_path)
    dockerfile = tmp_path / "Dockerfile.gpu"
    dockerfile.write_text("FROM scratch\nCOPY handler.py /handler.py\n")
    pushed_from = source_sha256(ctx, "../Dockerfile.gpu")
    dockerfile.write_text("FROM scratch\nCOPY handler.py /opt/handler.py\n")
    built: list[str] = []
    with pytest.raises(TagConflict):
        build_docker(_engine(built, labels={SOURCE_LABEL: pushed_from}), ctx, REPO, _identity(ctx),
                     dockerfile="../Dockerfile.gpu")
    assert built == []


@pytest.mark.parametrize("how", ["answer", "stream"])
def test_a_failed_pull_of_the_pushed_image_is_named_not_blamed_on_the_source(tmp_path: Path, how: str) -> None:
    # A CI re-run of the same commit: the engine cannot pull the pushed image to read its label. Before, the failure
    # was swallowed, the whole image rebuilt, and the job stopped with "built from other source ... commit your
    # change": wrong advice, and the real cause never shown. A failed layer download is only a line of the pull
    # stream (the SDK does not raise on it).
    ctx = _context(tmp_path)
    said = {"answer": 'Get "https://127.0.0.1:5000/v2/": net/http: TLS handshake timeout',
            "stream": "failed to register layer: write /comfyui/models/x: no space left on device"}[how]
    built: list[str] = []
    engine = _engine(built, **{"pull_error" if how == "answer" else "stream_error": said})
    with pytest.raises(BuildFailed, match=f"cannot pull {REPO}@{PUSHED} to check whether it was built from this "
                                          rf"source \({said}\); nothing was built"):
        build_docker(engine, ctx, REPO, _identity(ctx))
    assert built == []


def test_a_pushed_image_the_registry_no_longer_has_leaves_the_decision_to_the_tag_check(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    built: list[str] = []
    engine = _engine(built)
    engine.api.pull = lambda *_a, **_kw: (_ for _ in ()).throw(docker.errors.NotFound("manifest unknown"))
    with pytest.raises(GoldgateError, match="was built from other source"):
        build_docker(engine, ctx, REPO, _identity(ctx))
    assert built == [source_sha256(ctx)]


def test_python_caches_in_the_worker_context_do_not_change_its_source_hash(tmp_path: Path) -> None:
    # Running the worker's tests or importing its modules leaves __pycache__ in images/worker. Docker is not sent
    # them (images/worker/.dockerignore), so they must not make the same commit "other source" than its pushed image.
    ctx = tmp_path / "worker"
    shutil.copytree(WORKER_DIR, ctx, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    clean = source_sha256(ctx)
    for cache in (ctx / "__pycache__", ctx / "workflows" / "__pycache__"):
        cache.mkdir(exist_ok=True)
        (cache / "handler.cpython-311.pyc").write_bytes(b"\x00compiled")
    (ctx / "stray.pyc").write_bytes(b"\x00compiled")
    assert source_sha256(ctx) == clean
    (ctx / "handler.py").write_text((ctx / "handler.py").read_text() + "# an edit\n")
    assert source_sha256(ctx) != clean       # what docker is sent still counts
