"""Static checks of the worker image definition: what a build would produce, without building."""

from __future__ import annotations

import re

from worker_harness import WORKER_DIR

from images.worker.manifest import load_manifest

DOCKERFILE = (WORKER_DIR / "Dockerfile").read_text()
INSTRUCTIONS = [line.strip() for line in DOCKERFILE.splitlines() if line.strip() and not line.startswith("#")]


def _index(predicate) -> int:
    return next(i for i, line in enumerate(INSTRUCTIONS) if predicate(line))


def test_the_base_image_is_pinned_by_digest_and_overridable():
    arg = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert arg and re.fullmatch(r"[a-z0-9./_-]+@sha256:[0-9a-f]{64}", arg.group(1))
    froms = [line for line in INSTRUCTIONS if line.startswith("FROM ")]
    assert froms == ["FROM ${BASE_IMAGE}"]


def test_there_is_no_volume_and_no_network_volume_path():
    assert not any(line.startswith("VOLUME") for line in INSTRUCTIONS)
    for needle in ("/runpod-volume", "/workspace", "extra_model_paths"):
        assert needle not in "\n".join(INSTRUCTIONS)
        assert needle not in (WORKER_DIR / "start.sh").read_text()


FETCH = "RUN python -B /opt/goldgate/fetch_model.py "


def _model_layers() -> list[int]:
    return [i for i, line in enumerate(INSTRUCTIONS) if line.startswith(FETCH)]


def test_every_manifest_model_is_baked_with_its_checksum_and_size_into_its_loader_directory():
    # `fetch_model.py URL SHA256|- SIZE|- DEST`: the size bounds the download (a wrong file stops at its first
    # byte too many, not after tens of GB).
    baked = {}
    for i in _model_layers():
        match = re.fullmatch(r"(https://\S+) ([0-9a-f]{64}|-) ([0-9]+|-) (/comfyui/models/\S+)",
                             INSTRUCTIONS[i].removeprefix(FETCH))
        assert match, INSTRUCTIONS[i]
        baked[match.group(4)] = (None if match.group(2) == "-" else match.group(2), match.group(1),
                                 None if match.group(3) == "-" else int(match.group(3)))
    manifest = load_manifest(WORKER_DIR / "models.yaml")
    assert len(baked) == len(_model_layers()), "one layer per model"
    assert set(baked) == {f"/comfyui/models/{m.relative_path}" for m in manifest.models}
    for model in manifest.models:
        checksum, url, size = baked[f"/comfyui/models/{model.relative_path}"]
        assert url == model.source_url
        assert checksum == model.sha256, f"{model.file}: Dockerfile checksum must equal models.yaml sha256"
        assert size == model.size, f"{model.file}: Dockerfile size must equal models.yaml size"


def test_model_layers_come_before_dependencies_and_code():
    # A code change must not rebuild (and re-push) a model layer: before the models comes nothing but the
    # base and the fetch script.
    first_model, last_model = _model_layers()[0], _model_layers()[-1]
    assert INSTRUCTIONS[first_model - 1] == "COPY fetch_model.py /opt/goldgate/fetch_model.py"
    assert all(line.startswith(("ARG BASE_IMAGE=", "FROM ", "SHELL ")) for line in INSTRUCTIONS[:first_model - 1])
    assert all(line.startswith(FETCH) for line in INSTRUCTIONS[first_model:last_model + 1])
    assert last_model < _index(lambda line: line.startswith("ARG WORKFLOW_VERSION"))


# Flags the classic builder (what `goldgate build --repo` drives through the docker SDK) accepts; every
# other instruction takes none. BuildKit-only ones (ADD --checksum/--chmod, RUN --mount) fail that build.
# A scan of the whole file, not a build: tests/release/test_build_docker.py builds its head (up to the first
# model layer, on a stand-in base) under the classic builder against a real engine.
CLASSIC_FLAGS = {"FROM": {"--platform"}, "COPY": {"--chown", "--from"}, "ADD": {"--chown"}}


def test_the_dockerfile_uses_only_classic_builder_syntax():
    assert not re.match(r"#\s*syntax\s*=", DOCKERFILE, re.IGNORECASE), "a syntax directive needs BuildKit"
    logical = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    for line in logical:
        assert "<<" not in line, f"{line[:80]}: heredocs need BuildKit"
        keyword, *args = line.split()
        flags = set()
        for arg in args:
            if not arg.startswith("--"):
                break
            flags.add(arg.split("=", 1)[0])
        assert flags <= CLASSIC_FLAGS.get(keyword.upper(), set()), f"{line[:80]}: {sorted(flags)} need BuildKit"


def test_workflow_version_and_image_tag_are_env_from_build_args():
    assert "ARG WORKFLOW_VERSION" in INSTRUCTIONS and "ARG WORKER_IMAGE_TAG" in INSTRUCTIONS
    assert re.search(r"ENV WORKFLOW_VERSION=\$\{WORKFLOW_VERSION\}", DOCKERFILE)
    assert re.search(r"WORKER_IMAGE_TAG=\$\{WORKER_IMAGE_TAG\}", DOCKERFILE)


def test_python_dependencies_are_pinned():
    # A pin ends in ` \` and its hash lines (`--hash=sha256:...`) follow it.
    text = (WORKER_DIR / "requirements.txt").read_text()
    lines = [line.strip().removesuffix(" \\") for line in text.splitlines()
             if line.strip() and not line.startswith("#") and not line.lstrip().startswith("--hash=")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line) for line in lines)
    assert {line.split("==")[0].lower() for line in lines} >= {"runpod", "boto3", "pyyaml"}


def test_the_start_script_runs_preflight_before_the_handler_and_fails_fast():
    script = (WORKER_DIR / "start.sh").read_text()
    assert "set -euo pipefail" in script
    comfy, preflight, handler = (script.index("main.py"), script.index(".preflight"), script.index(".handler"))
    assert comfy < preflight < handler
    assert re.search(r"if ! .*\.preflight\"?( --log-only)?; then.*?exit 1", script, re.DOTALL)
    assert 'CMD ["/opt/goldgate/start.sh"]' in INSTRUCTIONS


WORKER_UID = "10001"
WRITABLE = ("/comfyui/output", "/comfyui/temp", "/comfyui/input", "/comfyui/user")


def test_the_worker_runs_as_a_non_root_user_once_everything_that_needs_root_is_done():
    users = [i for i, line in enumerate(INSTRUCTIONS) if line.startswith("USER ")]
    assert users, "the image must not run ComfyUI and the handler as root"
    last = users[-1]
    assert INSTRUCTIONS[last] == f"USER {WORKER_UID}:{WORKER_UID}"
    assert not any(line.startswith(("RUN", "COPY", "ADD")) for line in INSTRUCTIONS[last:])
    assert INSTRUCTIONS[-1] == 'CMD ["/opt/goldgate/start.sh"]'


def test_the_worker_user_can_read_the_models_but_not_change_them():
    # The models are baked as root (fetch_model.py makes them 644: tests/worker/test_fetch_model.py), so the
    # worker user reads them and cannot change them.
    assert not any(line.startswith("USER ") for line in INSTRUCTIONS[:_model_layers()[-1]])
    assert not any("--chown" in line for line in INSTRUCTIONS[:_model_layers()[-1]])
    assert not re.search(r"chown[^\n]*/comfyui(/models)?(\s|$)", DOCKERFILE)


def test_the_worker_user_owns_the_folders_comfyui_writes():
    (setup,) = [line for line in DOCKERFILE.split("\n\n") if "useradd" in line]
    assert f"--uid {WORKER_UID}" in setup
    for folder in WRITABLE:
        assert re.search(rf"mkdir -p [^&]*{folder}(\s|$)", setup), folder
        assert re.search(rf"chown -R {WORKER_UID}:{WORKER_UID} [^&]*{folder}(\s|$)", setup), folder
