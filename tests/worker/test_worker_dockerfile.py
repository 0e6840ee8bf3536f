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


def test_every_manifest_model_is_baked_with_its_checksum_into_its_loader_directory():
    adds = [line for line in INSTRUCTIONS if line.startswith("ADD ")]
    baked = {}
    for line in adds:
        match = re.fullmatch(r"ADD --chmod=644 (?:--checksum=sha256:([0-9a-f]{64}) )?(https://\S+) (/comfyui/models/\S+)",
                             line)
        assert match, line
        baked[match.group(3)] = (match.group(1), match.group(2))
    manifest = load_manifest(WORKER_DIR / "models.yaml")
    assert set(baked) == {f"/comfyui/models/{m.relative_path}" for m in manifest.models}
    for model in manifest.models:
        checksum, url = baked[f"/comfyui/models/{model.relative_path}"]
        assert url == model.source_url
        assert checksum == model.sha256, f"{model.file}: Dockerfile checksum must equal models.yaml sha256"


def test_model_layers_come_before_dependencies_and_code():
    last_model = max(i for i, line in enumerate(INSTRUCTIONS) if line.startswith("ADD "))
    first_code = _index(lambda line: line.startswith(("COPY", "RUN")))
    assert last_model < first_code
    assert last_model < _index(lambda line: line.startswith("ARG WORKFLOW_VERSION"))


def test_workflow_version_and_image_tag_are_env_from_build_args():
    assert "ARG WORKFLOW_VERSION" in INSTRUCTIONS and "ARG WORKER_IMAGE_TAG" in INSTRUCTIONS
    assert re.search(r"ENV WORKFLOW_VERSION=\$\{WORKFLOW_VERSION\}", DOCKERFILE)
    assert re.search(r"WORKER_IMAGE_TAG=\$\{WORKER_IMAGE_TAG\}", DOCKERFILE)


def test_python_dependencies_are_pinned():
    lines = [line.strip() for line in (WORKER_DIR / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line) for line in lines)
    assert {line.split("==")[0].lower() for line in lines} >= {"runpod", "boto3", "pyyaml"}


def test_the_start_script_runs_preflight_before_the_handler_and_fails_fast():
    script = (WORKER_DIR / "start.sh").read_text()
    assert "set -euo pipefail" in script
    comfy, preflight, handler = (script.index("main.py"), script.index(".preflight"), script.index(".handler"))
    assert comfy < preflight < handler
    assert re.search(r"if ! .*\.preflight\"?; then.*?exit 1", script, re.DOTALL)
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
    # Docker gives a file ADDed from a URL mode 600: root alone could read the models and ComfyUI, running
    # as the worker user, would list every checkpoint and fail to open it.
    adds = [line for line in INSTRUCTIONS if line.startswith("ADD ")]
    assert adds and all(line.startswith("ADD --chmod=644 ") for line in adds)
    assert not any("--chown" in line for line in adds)
    assert not re.search(r"chown[^\n]*/comfyui(/models)?(\s|$)", DOCKERFILE)


def test_the_worker_user_owns_the_folders_comfyui_writes():
    (setup,) = [line for line in DOCKERFILE.split("\n\n") if "useradd" in line]
    assert f"--uid {WORKER_UID}" in setup
    for folder in WRITABLE:
        assert re.search(rf"mkdir -p [^&]*{folder}(\s|$)", setup), folder
        assert re.search(rf"chown -R {WORKER_UID}:{WORKER_UID} [^&]*{folder}(\s|$)", setup), folder
