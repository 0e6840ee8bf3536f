"""The workflow registry (images/worker/workflows/*.json) and validation of a job's inputs against it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.http import ApiError
from service.inputs import INPUT_KEY, INPUT_KEY_SHAPE

_TYPES = ("string", "integer", "number", "boolean", "image")
# What an image parameter never has: its value is an uploaded image's key, which no workflow file can know.
_NOT_FOR_IMAGES = ("default", "min", "max", "choices")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class WorkflowError(ValueError):
    """A workflow file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    default: Any
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required, "default": self.default,
                "min": self.min, "max": self.max,
                "choices": list(self.choices) if self.choices is not None else None}


@dataclass(frozen=True)
class Workflow:
    id: str
    version: str
    description: str
    parameters: tuple[Parameter, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "description": self.description,
                "parameters": [p.to_dict() for p in self.parameters]}

    def validate_inputs(self, inputs: Any) -> dict[str, Any]:
        """The inputs with defaults filled in, or a 400 naming the offending field."""
        if not isinstance(inputs, dict):
            raise ApiError(400, "invalid_inputs", "inputs must be a JSON object of parameter values",
                           field="inputs")
        known = {p.name for p in self.parameters}
        for name in inputs:
            if name not in known:
                raise ApiError(400, "unknown_input",
                               f"inputs.{_short(name)} is not a parameter of workflow {self.id}; "
                               f"known: {', '.join(sorted(known))}", field=f"inputs.{_short(name)}")
        resolved: dict[str, Any] = {}
        for param in self.parameters:
            if param.name in inputs:
                resolved[param.name] = _check_value(param, inputs[param.name])
            elif param.required:
                raise ApiError(400, "missing_input", f"inputs.{param.name} is required", field=f"inputs.{param.name}")
            elif param.default is not None:
                resolved[param.name] = param.default
        return resolved


def _short(name: str) -> str:
    return name if len(name) <= 64 else name[:61] + "..."


def _check_value(param: Parameter, value: Any) -> Any:
    where = f"inputs.{param.name}"

    def bad(message: str) -> ApiError:
        return ApiError(400, "invalid_input", f"{where} {message}", field=where)

    if param.type == "image":
        if not isinstance(value, str):
            raise bad(f"must be the key of an uploaded image ({INPUT_KEY_SHAPE}, from POST /api/inputs), got "
                      f"{_json_type(value)}")
        if not INPUT_KEY.match(value):
            raise bad(f"must be the key of an uploaded image, {INPUT_KEY_SHAPE}, as POST /api/inputs answers it; "
                      f"got {_short(value)!r}")
        return value
    if param.type == "string":
        if not isinstance(value, str):
            raise bad(f"must be a string, got {_json_type(value)}")
        if "\x00" in value:  # the worker refuses it (images/worker/workflows.py): refused here, before a job is billed
            raise bad("contains a NUL character")
        measure: float = len(value)
        unit = " characters"
    elif param.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                value = int(value)
            else:
                raise bad(f"must be an integer, got {_json_type(value)}")
        measure, unit = value, ""
    elif param.type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise bad(f"must be a finite number, got {_json_type(value)}")
        measure, unit = value, ""
    else:
        if not isinstance(value, bool):
            raise bad(f"must be true or false, got {_json_type(value)}")
        return value
    if param.choices is not None and value not in param.choices:
        raise bad(f"must be one of {', '.join(map(str, param.choices))}")
    if param.min is not None and measure < param.min:
        raise bad(f"must be at least {_num(param.min)}{unit}")
    if param.max is not None and measure > param.max:
        raise bad(f"must be at most {_num(param.max)}{unit}")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


def parse_workflow(text: str, source: str) -> Workflow:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, dict):
        raise WorkflowError(f"{source}: must be a JSON object")
    wid, version = raw.get("id"), raw.get("version")
    if not isinstance(wid, str) or not _ID.match(wid):
        raise WorkflowError(f"{source}: id must be lowercase letters, digits, '.', '_' or '-'")
    if not isinstance(version, str) or not version.startswith(wid + "@") or len(version) > 64:
        raise WorkflowError(f"{source}: version must look like '{wid}@1.0.0' (at most 64 characters)")
    params_raw = raw.get("parameters")
    if not isinstance(params_raw, list):
        raise WorkflowError(f"{source}: parameters must be a list")
    params: list[Parameter] = []
    for i, p in enumerate(params_raw):
        where = f"{source}: parameters[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or p.get("type") not in _TYPES:
            raise WorkflowError(f"{where} needs a string name and a type in {', '.join(_TYPES)}")
        if p["type"] == "image":
            for name in _NOT_FOR_IMAGES:
                if p.get(name) is not None:
                    raise WorkflowError(f"{where}.{name} must be null for an image parameter: its value is the key "
                                        "of an image uploaded with POST /api/inputs")
            if p.get("required") is not True:   # as the worker's loader (images/worker/workflows.py) says
                raise WorkflowError(f"{where}.required must be true for a parameter of type image: it has no "
                                    "default, so a job without it would send the node no image at all")
        for bound in ("min", "max"):
            if p.get(bound) is not None and (isinstance(p[bound], bool) or not isinstance(p[bound], (int, float))):
                raise WorkflowError(f"{where}.{bound} must be a number or null")
        choices = p.get("choices")
        if choices is not None and not isinstance(choices, list):
            raise WorkflowError(f"{where}.choices must be a list or null")
        params.append(Parameter(name=p["name"], type=p["type"], required=bool(p.get("required", False)),
                                default=p.get("default"), min=p.get("min"), max=p.get("max"),
                                choices=tuple(choices) if choices is not None else None))
    return Workflow(id=wid, version=version, description=str(raw.get("description") or ""),
                    parameters=tuple(params))


class Registry:
    """The workflows this service accepts, by id."""

    def __init__(self, workflows: Iterable[Workflow]) -> None:
        self._by_id: dict[str, Workflow] = {}
        for wf in workflows:
            if wf.id in self._by_id:
                raise WorkflowError(f"workflow id {wf.id} is defined twice")
            self._by_id[wf.id] = wf

    @classmethod
    def from_dir(cls, directory: str | Path) -> Registry:
        path = Path(directory)
        if not path.is_dir():
            raise WorkflowError(f"workflows directory {path} does not exist")
        return cls(parse_workflow(f.read_text(encoding="utf-8"), f.name) for f in sorted(path.glob("*.json")))

    @classmethod
    def from_texts(cls, texts: Iterable[str] | Mapping[str, str]) -> Registry:
        """For the Worker bundle: file contents (or name -> contents) instead of a directory."""
        items = texts.items() if isinstance(texts, Mapping) else ((f"workflow[{i}]", t) for i, t in enumerate(texts))
        return cls(parse_workflow(text, name) for name, text in items)

    def get(self, workflow_id: Any) -> Workflow:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise ApiError(400, "invalid_workflow_id", "workflow_id must be a non-empty string",
                           field="workflow_id")
        wf = self._by_id.get(workflow_id)
        if wf is None:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise ApiError(400, "unknown_workflow", f"no workflow {_short(workflow_id)!r}; known: {known}",
                           field="workflow_id")
        return wf

    def all(self) -> list[Workflow]:
        return [self._by_id[k] for k in sorted(self._by_id)]
