"""The second month on a stack, as docs/RUNBOOK.md tells it, held against what the code does: adding a model
(both files the two builds read), shipping and retiring a workflow version (what the worker refuses, what a
client then gets, the log line that shows who still sends the old id), and the sections an operator looks for
(scaling, the API token, a rollback rehearsal)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "service"))  # the service test kit, for a create's real log line

from service_testkit import (
    _migrated_template,
    _s3_session_client,
    _store_client,
    db_path,
    fake_runpod,
    log_lines,
    moto_endpoint,
    s3,
    svc,
)

__all__ = ["_migrated_template", "_s3_session_client", "_store_client", "db_path", "fake_runpod", "log_lines",
           "moto_endpoint", "s3", "svc"]

RUNBOOK = REPO / "docs" / "RUNBOOK.md"
WORKER = REPO / "images" / "worker"


def _section(title: str) -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    assert f"\n## {title}\n" in text, f"docs/RUNBOOK.md has no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _prose(text: str) -> str:
    return " ".join(text.split())


def _worker_copy(tmp_path: Path) -> Path:
    source = tmp_path / "worker"
    shutil.copytree(WORKER, source, ignore=shutil.ignore_patterns("__pycache__"))
    return source


NEW_MODEL = {"file": "sd_xl_turbo_1.0_fp16.safetensors", "kind": "checkpoint", "directory": "checkpoints",
             "size": 4096, "sha256": "e" * 64, "source_url": "https://models.example/sd_xl_turbo_1.0_fp16.safetensors"}


def _add_to_manifest(source: Path) -> None:
    manifest = yaml.safe_load((source / "models.yaml").read_text(encoding="utf-8"))
    manifest["models"].append(NEW_MODEL)
    (source / "models.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")


def _dockerfile_line_the_runbook_gives() -> str:
    text = _section("Add a model to the worker image")
    line = re.search(r"`(RUN python -B /opt/goldgate/fetch_model\.py [^`]+)`", text)
    assert line, "the section gives the Dockerfile line that bakes the model"
    return (line.group(1).replace("<source_url>", NEW_MODEL["source_url"]).replace("<sha256>", NEW_MODEL["sha256"])
            .replace("<size>", str(NEW_MODEL["size"]))
            .replace("<directory>", NEW_MODEL["directory"]).replace("<file>", NEW_MODEL["file"]))


def test_a_model_added_to_models_yaml_alone_builds_locally_and_fails_the_checklists_dockerfile_line(tmp_path):
    # The local snapshot bakes from models.yaml, the cloud image from the Dockerfile: a model in one only passes
    # every local golden run. The runbook says to add both, and the checklist's line is what shows the gap.
    from goldgate.local.image_store import build_local_image
    from goldgate.ops.checklist_facts import dockerfile_problems
    from images.worker.manifest import load_manifest

    source = _worker_copy(tmp_path)
    _add_to_manifest(source)
    image = build_local_image(source, tmp_path / "home")
    baked = tmp_path / "home" / "images" / image.rsplit(":", 1)[1] / "models" / "checkpoints" / NEW_MODEL["file"]
    assert baked.stat().st_size == NEW_MODEL["size"]

    manifest = load_manifest(source / "models.yaml")
    problems = dockerfile_problems(source / "Dockerfile", manifest)
    quoted = re.search(r"`(the Dockerfile does not bake) <directory>/<file> \.\.\.`",
                       _prose(_section("Add a model to the worker image")))
    assert quoted, "the section quotes the checklist's line"
    assert [p for p in problems if NEW_MODEL["file"] in p] == [
        f"{quoted.group(1)} checkpoints/{NEW_MODEL['file']} into /comfyui/models/checkpoints/{NEW_MODEL['file']}"]

    dockerfile = source / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text(encoding="utf-8") + _dockerfile_line_the_runbook_gives() + "\n",
                          encoding="utf-8")
    assert [p for p in dockerfile_problems(dockerfile, manifest) if NEW_MODEL["file"] in p] == []


def test_the_runbooks_rebuild_step_names_the_dockerfile_as_well_as_models_yaml():
    step = _prose(_section('"No checkpoint models appear to be available"').split("4. **Rebuild", 1)[1])
    assert "images/worker/models.yaml" in step and "images/worker/Dockerfile" in step and "fetch_model.py" in step


def test_a_workflow_naming_a_file_models_yaml_lacks_is_refused_by_the_build_as_the_runbook_quotes(tmp_path):
    from goldgate.local.image_store import ImageStoreError, build_local_image

    source = _worker_copy(tmp_path)
    workflow = json.loads((source / "workflows" / "sdxl-txt2img.json").read_text(encoding="utf-8"))
    workflow.update(id="sdxl-turbo", version="sdxl-turbo@1.0.0")
    workflow["graph"]["4"]["inputs"]["ckpt_name"] = NEW_MODEL["file"]
    (source / "workflows" / "sdxl-turbo.json").write_text(json.dumps(workflow), encoding="utf-8")
    with pytest.raises(ImageStoreError) as refused:
        build_local_image(source, tmp_path / "home")
    quoted = re.search(r"\(`\.\.\. (names '<file>', which is not in models\.yaml; add it under checkpoints/ or "
                       r"fix the workflow)`\)", _prose(_section("Add a model to the worker image")))
    assert quoted, "the section quotes the build's refusal"
    assert quoted.group(1).replace("<file>", NEW_MODEL["file"]) in str(refused.value)


def test_a_worker_refuses_a_job_of_another_version_or_a_retired_id_in_the_words_the_runbook_gives():
    from images.worker.job_input import JobInputError, parse_job_input
    from images.worker.workflows import load_workflows

    workflows = load_workflows(WORKER / "workflows")
    text = _prose(_section("Ship a new version of a workflow"))
    base = {"workflow_id": "sdxl-txt2img", "workflow_version": "sdxl-txt2img@1.0.0", "inputs": {"prompt": "x"},
            "job_id": "0" * 32, "trace_id": "1" * 32, "result_prefix": f"results/{'0' * 32}/"}
    assert parse_job_input(base, workflows).workflow.version == "sdxl-txt2img@1.0.0"
    for change, words in (({"workflow_version": "sdxl-txt2img@1.1.0"}, "workflow version mismatch"),
                          ({"workflow_id": "sdxl-txt2img-v0", "workflow_version": "sdxl-txt2img-v0@1.0.0"},
                           "unknown workflow")):
        assert f"(`{words}`)" in text
        with pytest.raises(JobInputError, match=words):
            parse_job_input({**base, **change}, workflows)


def test_the_runbooks_retirement_grep_counts_the_creates_that_name_the_old_id(svc, log_lines):
    block = _section("Ship a new version of a workflow").split("```sh\n", 1)[1].split("```", 1)[0]
    patterns = re.findall(r"grep (?:-h |-c )?'([^']+)'", block)
    assert len(patterns) == 2 and "job.submitted" in patterns[0] and "sdxl-txt2img" in patterns[1]
    svc.create("a lighthouse")
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-retired", "inputs": {}})
    assert status == 400 and body["error"]["code"] == "unknown_workflow"
    assert "`unknown_workflow`" in _section("Ship a new version of a workflow")
    counted = subprocess.run(["bash", "-c", f"grep -h '{patterns[0]}' | grep -c '{patterns[1]}'"],
                             input="\n".join(log_lines) + "\n", capture_output=True, text=True, check=False)
    assert counted.stdout.strip() == "1", counted
    submitted = [json.loads(line) for line in log_lines if '"event":"job.submitted"' in line]
    assert [(e["data"]["workflow_id"], e["workflow_version"]) for e in submitted] == [
        ("sdxl-txt2img", "sdxl-txt2img@1.0.0")]
    row = next(line for line in (REPO / "docs" / "LOG_EVENTS.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `job.submitted` |"))
    assert "`data.workflow_id`" in row and "`workflow_version`" in row


@pytest.mark.parametrize("title", ["Ship a new version of a workflow", "Add a model to the worker image",
                                   "Change the endpoint's scaling", "Rotate the API token"])
def test_the_runbook_has_a_section_for_each_change_of_a_stacks_second_month(title):
    assert _section(title).strip()


def test_the_api_token_rotation_writes_the_file_the_stack_reads_and_names_the_ci_secrets_ci_reads(tmp_path):
    from goldgate.local.state import StackDir

    text = _prose(_section("Rotate the API token"))
    where = re.search(r"`D=\$\{GOLDGATE_HOME:-\.goldgate\}/(stacks/S/secrets)`", text)
    assert where and '> "$D/api_token")`' in text and "goldgate:apiToken" in text
    stack_dir = StackDir(tmp_path, "staging")
    assert stack_dir.secret_file("api_token") == tmp_path / where.group(1).replace("S", "staging") / "api_token"
    workflows = "".join(p.read_text(encoding="utf-8") for p in (REPO / ".github" / "workflows").glob("*.yml"))
    secrets = set(re.findall(r"GOLDGATE_API_TOKEN_[A-Z]+", text))
    assert secrets == {"GOLDGATE_API_TOKEN_STAGING", "GOLDGATE_API_TOKEN_PROD"}
    assert all(secret in workflows for secret in secrets)


def test_the_rollback_rehearsal_uses_a_fault_the_local_runpod_has():
    from goldgate.spec import Faults

    rollback = _prose(_section("Rollback"))
    fault = re.search(r"`local\.faults\.([a-z_]+): 1`", rollback.split("To rehearse a release", 1)[1])
    assert fault and fault.group(1) in {f.name for f in dataclasses.fields(Faults)}


def test_what_goldgate_builds_and_tests_comes_from_the_checkout_it_is_installed_from_as_the_readme_says():
    # A second checkout run with the first one's venv builds, tests and records the first one's files.
    from goldgate import migrations, spec
    from goldgate.commands import local
    from goldgate.release import cases

    readme = _prose((REPO / "README.md").read_text(encoding="utf-8"))
    assert "from the checkout goldgate is installed from" in readme
    for named, where in (("stacks/", spec.STACKS_DIR), ("images/worker/", local.WORKER_SOURCE),
                         ("migrations/", migrations.MIGRATIONS_DIR), ("golden cases", cases.GOLDEN_DIR)):
        assert f"{named}" in readme.split("from the checkout goldgate is installed from", 1)[1][:400]
        assert where.resolve().is_relative_to(Path(spec.__file__).resolve().parents[1])
