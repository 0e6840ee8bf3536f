"""The job input a RunPod job carries (docs/INTERFACES.md), checked field by field.

Each fault gets its own message: the text becomes the job's `error`, which an operator reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .workflows import InputError, Workflow, build_graph, resolve_inputs, shown

MAX_INPUT_BYTES = 64 * 1024
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_WORKFLOW_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_WORKFLOW_VERSION = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}@[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,510}/$")
FIELDS = ("workflow_id", "workflow_version", "inputs", "job_id", "trace_id", "result_prefix")


class JobInputError(ValueError):
    """The job input is unusable; the message says which field and why."""


@dataclass(frozen=True)
class JobInput:
    workflow: Workflow
    values: dict[str, Any]
    graph: dict[str, Any]
    job_id: str
    trace_id: str
    result_prefix: str

    def render_id(self) -> str:
        """The job and the exact graph it renders: RunPod runs a job at least once, and every run of it has this
        id, while another job, or this job id with other inputs, has another."""
        graph = json.dumps(self.graph, sort_keys=True, separators=(",", ":"))
        return f"{self.job_id}/{hashlib.sha256(graph.encode()).hexdigest()}"


def log_context(raw: Any) -> dict[str, str | None]:
    """The trace/job ids and the workflow version of a job input when they are well formed, for logging before full
    validation. A job's lines name the version the job asked for (the service logged that one), never the image's
    release version, not even on the line that rejects it for a version this image does not ship."""
    raw = raw if isinstance(raw, dict) else {}
    trace = raw.get("trace_id")
    job = raw.get("job_id")
    version = raw.get("workflow_version")
    version = version if isinstance(version, str) and len(version) <= 64 and _WORKFLOW_VERSION.fullmatch(version) \
        else None
    return {"trace_id": trace if isinstance(trace, str) and _TRACE_ID.fullmatch(trace) else None,
            "job_id": job if isinstance(job, str) and _JOB_ID.fullmatch(job) else None,
            "workflow_version": version}


def _string(raw: dict[str, Any], name: str, pattern: re.Pattern[str], hint: str) -> str:
    value = raw.get(name)
    if value is None:
        raise JobInputError(f"job input lacks {name!r}")
    if not isinstance(value, str) or not pattern.fullmatch(value):  # `match` would let a trailing \n through
        what = shown(value) if isinstance(value, str) else type(value).__name__
        raise JobInputError(f"job input {name!r} is malformed ({what}): {hint}")
    return value


def parse_job_input(raw: Any, workflows: dict[str, Workflow]) -> JobInput:
    """Validates a RunPod job's `input` and binds it to a shipped workflow."""
    if not isinstance(raw, dict):
        raise JobInputError(f"job input must be a JSON object, got {type(raw).__name__}")
    try:
        size = len(json.dumps(raw))
    except (TypeError, ValueError):
        raise JobInputError("job input is not JSON-serialisable") from None
    except RecursionError:  # any JSON client can nest a few hundred levels; the handler runs deeper in the stack
        raise JobInputError("job input is nested too deeply") from None
    if size > MAX_INPUT_BYTES:
        raise JobInputError(f"job input is {size} bytes; the limit is {MAX_INPUT_BYTES}")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise JobInputError(f"job input has unknown field {shown(unknown[0])} (expected {', '.join(FIELDS)})")
    trace_id = _string(raw, "trace_id", _TRACE_ID, "expected 32 lowercase hex characters")
    job_id = _string(raw, "job_id", _JOB_ID, "expected 1-128 characters of A-Z a-z 0-9 . _ : -")
    prefix = _string(raw, "result_prefix", _PREFIX, "expected a relative key prefix ending in '/', e.g. results/<job_id>/")
    if any(part in ("", ".", "..") for part in prefix[:-1].split("/")):
        raise JobInputError(f"job input 'result_prefix' {prefix!r} has an empty, '.' or '..' segment")
    workflow_id = _string(raw, "workflow_id", _WORKFLOW_ID, "expected a workflow id such as sdxl-txt2img")
    workflow = workflows.get(workflow_id)
    if workflow is None:
        raise JobInputError(f"unknown workflow {workflow_id!r}; this worker ships {', '.join(sorted(workflows))}")
    version = raw.get("workflow_version")
    if version is None:
        raise JobInputError("job input lacks 'workflow_version'")
    if version != workflow.version:
        raise JobInputError(f"workflow version mismatch: the job asks for {shown(version)} but this worker image "
                            f"ships {workflow.version!r}; deploy the matching image or resubmit")
    inputs = raw.get("inputs")
    if inputs is None:
        raise JobInputError("job input lacks 'inputs'")
    if not isinstance(inputs, dict):
        raise JobInputError(f"job input 'inputs' must be an object, got {type(inputs).__name__}")
    try:
        values = resolve_inputs(workflow, inputs)
    except InputError as exc:
        raise JobInputError(str(exc)) from None
    return JobInput(workflow=workflow, values=values, graph=build_graph(workflow, values), job_id=job_id,
                    trace_id=trace_id, result_prefix=prefix)
