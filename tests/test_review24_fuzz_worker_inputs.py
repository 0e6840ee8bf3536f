"""The worker's loaders, swept: a workflow file, models.yaml, the environment, and a job's input as RunPod hands it
to the handler (hostile client data: any JSON), each mutated from a valid one (review24_fuzz). Each is accepted or
refused with the worker's own error for it (WorkflowError, ManifestError, ConfigError, JobInputError) on one line
an operator reads; never a Python error from deep inside, which would end the job or the worker with a traceback."""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review24_fuzz import as_json, as_yaml, mutated, outcome

from images.worker.config import ConfigError, WorkerConfig, load_config
from images.worker.job_input import JobInput, JobInputError, parse_job_input
from images.worker.manifest import Manifest, ManifestError, load_manifest, parse_manifest
from images.worker.workflows import (
    InputError,
    Workflow,
    WorkflowError,
    build_graph,
    load_workflow,
    load_workflows,
    parse_workflow,
    resolve_inputs,
)

WORKER = Path(__file__).resolve().parent.parent / "images" / "worker"
WORKFLOW_FILES = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((WORKER / "workflows").glob("*.json"))}
WORKFLOWS = load_workflows(WORKER / "workflows")
MODELS = yaml.safe_load((WORKER / "models.yaml").read_text(encoding="utf-8"))
SWEEP = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _one_line(error: Exception) -> str:
    message = str(error)
    assert message and "\n" not in message, message
    return message


@SWEEP
@given(st.data(), st.sampled_from(sorted(WORKFLOW_FILES)))
def test_a_mutated_workflow_loads_or_is_refused_by_name(data: st.DataObject, wid: str) -> None:
    doc, _ = data.draw(mutated(WORKFLOW_FILES[wid], json_only=True))
    result = outcome(lambda: parse_workflow(doc, f"workflows/{wid}.json"), WorkflowError)
    if isinstance(result, WorkflowError):
        assert _one_line(result).startswith(f"workflows/{wid}.json"), result
    else:  # a workflow that loads binds a job: its defaults, and its graph copied for the prompt
        values = {p.name: p.default if p.default is not None else (p.choices or ["x"])[0] for p in result.parameters}
        outcome(lambda: build_graph(result, resolve_inputs(result, values)), InputError)
    text, _ = as_json(data.draw, doc)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{wid}.json"
        file.write_bytes(text)
        loaded = outcome(lambda: load_workflow(file), WorkflowError)
    assert isinstance(loaded, Workflow | WorkflowError)
    if isinstance(loaded, WorkflowError):
        assert str(file) in _one_line(loaded), loaded


@SWEEP
@given(st.data())
def test_a_mutated_manifest_loads_or_is_refused_by_name(data: st.DataObject) -> None:
    doc, _ = data.draw(mutated(MODELS))
    text, _ = as_yaml(data.draw, doc)
    result = outcome(lambda: parse_manifest(doc, "models.yaml"), ManifestError)
    if isinstance(result, ManifestError):
        assert _one_line(result).startswith("models.yaml: "), result
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "models.yaml"
        file.write_bytes(text)
        loaded = outcome(lambda: load_manifest(file), ManifestError)
    assert isinstance(loaded, Manifest | ManifestError)
    if isinstance(loaded, ManifestError):
        assert str(file) in str(loaded), loaded


def _job_input(workflow: Workflow) -> dict[str, Any]:
    inputs = {p.name: p.default for p in workflow.parameters if not p.required}
    inputs.update({p.name: "a lighthouse at dusk" for p in workflow.parameters if p.required})
    return {"workflow_id": workflow.id, "workflow_version": workflow.version, "inputs": inputs,
            "job_id": "job-7f3a", "trace_id": "0123456789abcdef0123456789abcdef", "result_prefix": "results/job-7f3a/"}


@SWEEP
@given(st.data(), st.sampled_from(sorted(WORKFLOWS)))
def test_a_hostile_job_input_is_taken_or_refused_in_one_line(data: st.DataObject, wid: str) -> None:
    raw, _ = data.draw(mutated(_job_input(WORKFLOWS[wid]), json_only=True))
    result = outcome(lambda: parse_job_input(raw, WORKFLOWS), JobInputError)
    if isinstance(result, JobInput):
        result.render_id()  # the id each run of the job stores its outcome under
        json.dumps(result.graph)  # the prompt sent to ComfyUI
    else:  # the job's `error`: what the service records and an operator reads, never the whole hostile value
        assert len(_one_line(result)) < 1_000, result


ENV = {"WORKFLOW_VERSION": "2026.11.0", "WORKER_IMAGE_TAG": "2026.11.0-gabc", "STACK": "staging",
       "R2_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com", "R2_BUCKET": "goldgate-staging-results",
       "R2_ACCESS_KEY_ID": "key-id-4b1f0e", "R2_SECRET_ACCESS_KEY": "secret-9d2c77aa51", "COMFY_URL": "http://127.0.0.1:8188",
       "MODEL_ROOTS": "/comfyui/models", "COMFY_OUTPUT_DIR": "/comfyui/output", "COMFY_PID": "41",
       "COMFY_READY_TIMEOUT_S": "300", "COMFY_JOB_TIMEOUT_S": "540", "GPU_TYPE": "NVIDIA GeForce RTX 4090",
       "RUNPOD_AI_API_KEY": "rp-apikey-0c7e55"}
_ENV_TEXT = st.one_of(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(["", " ", "0", "-1", "nan", "inf", "1e999", "1_0", "0x10", "9" * 5_000, "٣", "²", "http://",
                     "ftp://x", "x" * 5_000, "\x1b[31m", "a\nb", "١٢٣"]))


@SWEEP
@given(st.dictionaries(st.sampled_from(sorted(ENV)), st.one_of(st.none(), _ENV_TEXT), max_size=6))
def test_a_mangled_worker_environment_loads_or_is_refused_by_name(changes: dict[str, str | None]) -> None:
    env = {k: v for k, v in {**ENV, **changes}.items() if v is not None}
    result = outcome(lambda: load_config(env), ConfigError)
    if isinstance(result, WorkerConfig):
        return
    message = str(result)
    assert any(name in message for name in ENV), message  # names the variable to set
    secrets = ("R2_SECRET_ACCESS_KEY", "R2_ACCESS_KEY_ID", "RUNPOD_AI_API_KEY")
    for secret in secrets:  # (unless the same text is also another variable's value, which may be quoted)
        value = env.get(secret, "")
        if len(value) >= 8 and not any(value in v for k, v in env.items() if k not in secrets):
            assert value not in message, message


# What the sweep found, each reduced to its smallest form.
def _sdxl() -> dict[str, Any]:
    return copy.deepcopy(WORKFLOW_FILES["sdxl-txt2img"])


def _linked_input(doc: dict[str, Any]) -> tuple[str, str]:
    return next((node, name) for node, spec in doc["graph"].items()
                for name, value in spec["inputs"].items() if isinstance(value, list))


def test_a_link_to_a_list_instead_of_a_node_id_is_refused_by_name() -> None:
    doc = _sdxl()
    node, name = _linked_input(doc)
    doc["graph"][node]["inputs"][name] = [["4"], 0]  # was TypeError: unhashable type: 'list'
    with pytest.raises(WorkflowError, match=rf"^w\.json\.graph node {node} input '{name}' links to \[\['4'\], 0\], "
                                            r"which is not \[existing node id, output index\]$"):
        parse_workflow(doc, "w.json")


@pytest.mark.parametrize("bound", ["min", "max"])
def test_an_infinite_parameter_bound_is_refused_by_name(bound: str) -> None:
    doc = _sdxl()
    param = next(p for p in doc["parameters"] if p["name"] == "negative_prompt")
    param[bound] = float("inf") if bound == "min" else -float("inf")  # was OverflowError checking its default
    with pytest.raises(WorkflowError, match=rf"^w\.json: parameters\[\d+\] \(negative_prompt\)\.{bound} must be a "
                                            "finite number or null, got -?inf$"):
        parse_workflow(doc, "w.json")


def _deep(depth: int) -> Any:
    value: Any = "euler"
    for _ in range(depth):
        value = [value]
    return value


def test_a_workflow_with_a_literal_nested_hundreds_deep_is_refused_when_loaded(tmp_path: Path) -> None:
    doc = _sdxl()
    node = next(n for n, spec in doc["graph"].items() if spec["class_type"] == "KSampler")
    doc["graph"][node]["inputs"]["extra"] = _deep(600)  # loaded, then every job failed copying it: RecursionError
    file = tmp_path / "sdxl-txt2img.json"
    file.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(WorkflowError, match=rf"^{file}: graph\.{node}\.inputs\.extra\.0\.0\.\.\. is nested more "
                                            "than 32 levels deep; no ComfyUI input is$"):
        load_workflow(file)


@pytest.mark.parametrize(("text", "reason"), [("[" * 100_000, "nested too deeply"),
                                              ('{"id": ' + "9" * 5_000 + "}", "Exceeds the limit (4300 digits)")])
def test_a_workflow_file_python_cannot_read_as_json_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    file = tmp_path / "w.json"
    file.write_text(text, encoding="utf-8")  # were RecursionError and ValueError
    with pytest.raises(WorkflowError, match=rf"^{file}: not valid JSON \({re.escape(reason)}"):
        load_workflow(file)


@pytest.mark.parametrize(("text", "reason"), [
    ("models: [!!bool maybe]\n", "KeyError"), ("models: [!!int '']\n", "IndexError"),
    ("models: [" + "9" * 5_000 + "]\n", "ValueError: Exceeds the limit (4300 digits)"),
    ("models: " + "[" * 5_000 + "]" * 5_000 + "\n", "RecursionError: nested too deeply")])
def test_a_models_file_pyyaml_cannot_construct_is_refused(tmp_path: Path, text: str, reason: str) -> None:
    file = tmp_path / "models.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"^{file}: not valid YAML \({re.escape(reason)}"):
        load_manifest(file)


def test_a_model_file_name_of_a_huge_hex_number_is_refused_by_name(tmp_path: Path) -> None:
    file = tmp_path / "models.yaml"
    file.write_text(f"models:\n  - {{file: 0x{'f' * 4_000}, kind: vae, directory: vae, size: null, sha256: null, "
                    "source_url: 'https://example.com/v'}\n", encoding="utf-8")  # was ValueError quoting it
    with pytest.raises(ManifestError, match=rf"^{file}: models\[0\]\.file must be a plain file name, got "
                                            r"<an integer of \d+ bits>$"):
        load_manifest(file)


def test_a_job_input_nested_deeper_than_the_stack_is_refused_as_the_job_error() -> None:
    raw = _job_input(WORKFLOWS["sdxl-txt2img"])
    raw["inputs"]["prompt"] = _deep(5_000)  # was RecursionError, out of run_job instead of the job's error
    with pytest.raises(JobInputError, match="^job input is nested too deeply$"):
        parse_job_input(raw, WORKFLOWS)


def test_a_comfy_pid_of_thousands_of_digits_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="^COMFY_PID='9999.* is not a process id; start.sh sets it"):
        load_config({"COMFY_PID": "9" * 5_000})  # was ValueError: Exceeds the limit (4300 digits)
    with pytest.raises(ConfigError, match="^COMFY_PID='٣' is not a process id"):
        load_config({"COMFY_PID": "٣"})


@pytest.mark.parametrize("field", ["id", "version", "parameter name"])
def test_a_name_with_a_trailing_line_break_is_refused(field: str) -> None:
    # `$` matches before a final "\n": the workflow loaded, and each job then failed on its version, or the name
    # took a line break into the API's parameter list.
    doc = _sdxl()
    if field == "id":
        doc["id"] += "\n"
    elif field == "version":
        doc["version"] += "\n"
    else:
        doc["parameters"][0]["name"] += "\n"
    with pytest.raises(WorkflowError, match=r"must (match|be)"):
        parse_workflow(doc, "w.json")


def test_a_model_file_name_with_a_trailing_line_break_is_refused() -> None:
    doc = copy.deepcopy(MODELS)
    entry = next(e for e in doc["models"] if isinstance(e, dict)) if isinstance(doc.get("models"), list) else None
    assert entry is not None, "models.yaml lists its models under `models`"
    entry["file"] += "\n"
    with pytest.raises(ManifestError, match=r"\.file must be a plain file name"):
        parse_manifest(doc, "models.yaml")
