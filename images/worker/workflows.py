"""Versioned ComfyUI workflows (images/worker/workflows/<id>.json): load, check, bind job inputs.

The format is the seam with the service (docs/INTERFACES.md, "Workflows"). The service validates
inputs too, but the worker checks them again: it never trusts what arrives in a job.
"""

from __future__ import annotations

import copy
import json
import math
import re
import reprlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PARAMETER_TYPES = ("string", "integer", "number", "boolean", "image")
# An image parameter's value: the R2 key POST /api/inputs answered (docs/INTERFACES.md, "Input images"). The worker
# fetches that object and hands ComfyUI the file; the key is all a job input ever carries of it.
INPUT_KEY = re.compile(r"^inputs/[0-9a-f]{32}\.(png|jpg|webp)$")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_VERSION_CHARS = 64
_VERSION = re.compile(r"^(?P<id>[a-z0-9][a-z0-9._-]{0,63})@(?P<semver>\d+\.\d+\.\d+)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_WORKFLOW_BYTES = 1_000_000
MAX_SHOWN_CHARS = 80  # how much of a job's own value an error echoes back (RunPod stores the output)
# A workflow is a few levels deep (graph, node, inputs, a link); each job copies its graph, and a literal nested
# hundreds of levels (which JSON reads) would exhaust Python's stack there, failing every job with a traceback.
MAX_DEPTH = 32


class WorkflowError(ValueError):
    """A workflow file is malformed; the message names the file and the field to fix."""


class InputError(ValueError):
    """A job's inputs do not fit the workflow's parameters; the message names the parameter."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    default: Any
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None
    node: str
    input: str


@dataclass(frozen=True)
class Workflow:
    id: str
    version: str
    description: str
    parameters: tuple[Parameter, ...]
    graph: dict[str, Any]
    path: Path | None = None

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)


def shown(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """repr(value), cut short: error messages name a hostile value without carrying all of it."""
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"<an integer of {value.bit_length()} bits>"  # repr() may even refuse one this long
    try:
        text = repr(value)
    except ValueError:  # an integer inside it too long to print (a YAML hex literal of thousands of digits)
        text = _BOUNDED.repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


class _Bounded(reprlib.Repr):
    """repr, cut by depth and length as it is made, an integer too long to print named by its size."""

    def repr_int(self, x: int, level: int) -> str:
        return super().repr_int(x, level) if x.bit_length() <= 1_000 else f"<an integer of {x.bit_length()} bits>"


_BOUNDED = _Bounded()
_BOUNDED.maxlevel, _BOUNDED.maxstring, _BOUNDED.maxother = 3, MAX_SHOWN_CHARS, MAX_SHOWN_CHARS


def _bound(value: float) -> str:
    """A parameter bound as written (4294967295, not 4.29497e+09)."""
    return str(int(value)) if isinstance(value, int) or value.is_integer() else repr(value)


def _check_value(param: Parameter, value: Any, where: str) -> Any:
    """Returns the value if it fits the parameter, else raises InputError naming `where`."""
    kind = param.type
    if kind == "string":
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {type(value).__name__}")
        if "\x00" in value:
            raise InputError(f"{where} contains a NUL character")
        if param.min is not None and len(value) < param.min:
            raise InputError(f"{where} must be at least {int(param.min)} characters long")
        if param.max is not None and len(value) > param.max:
            raise InputError(f"{where} must be at most {int(param.max)} characters long, got {len(value)}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {type(value).__name__}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} must be a number, got {type(value).__name__}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float: JSON allows any size
            finite = False
        if not finite:
            raise InputError(f"{where} must be a finite number")
    elif kind == "boolean" and not isinstance(value, bool):
        raise InputError(f"{where} must be true or false, got {type(value).__name__}")
    elif kind == "image" and (not isinstance(value, str) or not INPUT_KEY.fullmatch(value)):
        what = shown(value) if isinstance(value, str) else type(value).__name__
        raise InputError(f"{where} must be the key of an uploaded input image (inputs/<32 hex>.png, .jpg or "
                         f".webp, as POST /api/inputs answers it), got {what}")
    if kind in ("integer", "number"):
        if param.min is not None and value < param.min:
            raise InputError(f"{where} must be >= {_bound(param.min)}, got {shown(value)}")
        if param.max is not None and value > param.max:
            raise InputError(f"{where} must be <= {_bound(param.max)}, got {shown(value)}")
    if param.choices is not None and value not in param.choices:
        raise InputError(f"{where} must be one of {list(param.choices)}, got {shown(value)}")
    return value


def _number_or_none(raw: Any, where: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise WorkflowError(f"{where} must be a number or null")
    if isinstance(raw, float) and not math.isfinite(raw):  # JSON as Python reads it takes Infinity and NaN
        raise WorkflowError(f"{where} must be a finite number or null, got {raw}")
    return raw


def _parse_parameter(raw: Any, graph: dict[str, Any], where: str) -> Parameter:
    if not isinstance(raw, dict):
        raise WorkflowError(f"{where} must be an object")
    expected = {"name", "type", "required", "default", "min", "max", "choices", "node", "input"}
    missing = expected - raw.keys()
    if missing:
        raise WorkflowError(f"{where} lacks {sorted(missing)} (every field is present, null when unused)")
    extra = raw.keys() - expected
    if extra:
        raise WorkflowError(f"{where} has unknown fields {sorted(extra)}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise WorkflowError(f"{where}.name must match {_NAME.pattern}, got {shown(name)}")
    where = f"{where} ({name})"
    if raw["type"] not in PARAMETER_TYPES:
        raise WorkflowError(f"{where}.type must be one of {PARAMETER_TYPES}, got {shown(raw['type'])}")
    if not isinstance(raw["required"], bool):
        raise WorkflowError(f"{where}.required must be true or false")
    choices = raw["choices"]
    if choices is not None and (not isinstance(choices, list) or not choices):
        raise WorkflowError(f"{where}.choices must be a non-empty list or null")
    node, input_name = raw["node"], raw["input"]
    if not isinstance(node, bool) and isinstance(node, int) and str(node) in graph:
        raise WorkflowError(f"{where}.node is the number {node}: node ids are strings in ComfyUI's API format, "
                            f"write \"{node}\"")
    if not isinstance(node, str) or node not in graph:
        ids = sorted(graph, key=lambda k: (len(k), k))
        listed = ", ".join(f"{k} ({graph[k].get('class_type')})" for k in ids[:40])
        raise WorkflowError(f"{where}.node {shown(node)} is not a node of the graph (its nodes: {listed}"
                            f"{', ...' if len(ids) > 40 else ''})")
    if not isinstance(input_name, str) or input_name not in graph[node].get("inputs", {}):
        raise WorkflowError(f"{where}.input {shown(input_name)} is not an input of node {node} "
                            f"({graph[node].get('class_type')})")
    if isinstance(graph[node]["inputs"][input_name], list):
        raise WorkflowError(f"{where} targets node {node} input {input_name!r}, which is a link, not a value")
    if raw["type"] == "image":
        # A client's upload is the only value an image parameter takes: no default, bound or list fits one.
        for field in ("default", "min", "max", "choices"):
            if raw[field] is not None:
                raise WorkflowError(f"{where}.{field} must be null for a parameter of type image (its value is "
                                    f"the key of the client's upload), got {shown(raw[field])}")
        if not raw["required"]:
            raise WorkflowError(f"{where}.required must be true for a parameter of type image: it has no default "
                                f"to fall back on")
    param = Parameter(name=name, type=raw["type"], required=raw["required"], default=raw["default"],
                      min=_number_or_none(raw["min"], f"{where}.min"),
                      max=_number_or_none(raw["max"], f"{where}.max"),
                      choices=tuple(choices) if choices is not None else None, node=node, input=input_name)
    if param.choices is not None:
        # A choice the parameter's own type or bounds refuse could never be sent: say so where it is written,
        # not as "must be one of [...]" to a client who sent exactly that choice.
        plain = replace(param, choices=None)
        for index, choice in enumerate(param.choices):
            try:
                _check_value(plain, choice, f"{where}.choices[{index}]")
            except InputError as exc:
                raise WorkflowError(str(exc)) from None
    if param.required and param.default is not None:
        raise WorkflowError(f"{where} is required, so its default must be null")
    if not param.required:
        if param.default is None:
            raise WorkflowError(f"{where} is optional, so it needs a default")
        try:
            _check_value(param, param.default, f"{where}.default")
        except InputError as exc:
            raise WorkflowError(str(exc)) from None
    return param


UI_FORMAT_KEYS = frozenset({"nodes", "links"})  # ComfyUI's editor format ("Save"/"Export"), not its API format
_UI_FORMAT_HINT = ("ComfyUI's UI format (its \"nodes\" and \"links\" lists), which ComfyUI's /prompt does not "
                   "take: export it in API format (ComfyUI's File > Export Workflow (API); an older ComfyUI: "
                   "enable the dev mode options in its settings, then Save (API Format))")


def _is_ui_format(raw: Any) -> bool:
    return isinstance(raw, dict) and UI_FORMAT_KEYS <= raw.keys() and isinstance(raw.get("nodes"), list)


def _is_api_export(raw: Any) -> bool:
    """A bare ComfyUI API export: every value a node with a class_type."""
    return isinstance(raw, dict) and bool(raw) and all(
        isinstance(node, dict) and isinstance(node.get("class_type"), str) for node in raw.values())


def _check_graph(graph: Any, where: str) -> dict[str, Any]:
    if _is_ui_format(graph):
        raise WorkflowError(f"{where}.graph is in {_UI_FORMAT_HINT}")
    if not isinstance(graph, dict) or not graph:
        raise WorkflowError(f"{where}.graph must be a non-empty object in ComfyUI API format")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise WorkflowError(f"{where}.graph node {shown(node_id)} needs a class_type")
        if not isinstance(node.get("inputs"), dict):
            raise WorkflowError(f"{where}.graph node {shown(node_id)} needs an inputs object")
        for input_name, value in node["inputs"].items():
            linked = isinstance(value, list)
            if linked and (len(value) != 2 or not isinstance(value[0], str) or value[0] not in graph
                           or not isinstance(value[1], int) or isinstance(value[1], bool)):
                raise WorkflowError(f"{where}.graph node {node_id} input {input_name!r} links to "
                                    f"{shown(value)}, which is not [existing node id, output index]")
    return graph


def _too_deep(raw: Any) -> str | None:
    """Where `raw` nests more than MAX_DEPTH levels deep (as `graph.3.inputs...`), or None; walked without recursion."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(raw, ())]
    while stack:
        value, where = stack.pop()
        if len(where) > MAX_DEPTH:
            return ".".join(where[:6]) + "..."
        if isinstance(value, dict):
            stack.extend((v, (*where, k if isinstance(k, str) and len(k) <= 40 else shown(k, 40)))
                         for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, str(i))) for i, v in enumerate(value))
    return None


def parse_workflow(raw: Any, source: str = "<workflow>", path: Path | None = None) -> Workflow:
    if not isinstance(raw, dict):
        raise WorkflowError(f"{source}: a workflow is a JSON object")
    deep = _too_deep(raw)
    if deep is not None:
        raise WorkflowError(f"{source}: {deep} is nested more than {MAX_DEPTH} levels deep; no ComfyUI input is")
    if _is_ui_format(raw):
        raise WorkflowError(f"{source}: this is {_UI_FORMAT_HINT}, and wrap that in a goldgate workflow "
                            "(\"Add a workflow\" in images/worker/README.md)")
    if "id" not in raw and _is_api_export(raw):
        raise WorkflowError(f"{source}: this is a bare ComfyUI API export; a goldgate workflow wraps it: "
                            "{\"id\": \"<file name>\", \"version\": \"<id>@1.0.0\", \"description\": \"...\", "
                            "\"parameters\": [{\"name\", \"type\", ..., \"node\": \"<node id>\", \"input\": "
                            "\"<input name>\"}], \"graph\": <the export>} (\"Add a workflow\" in "
                            "images/worker/README.md)")
    for key in ("id", "version", "description", "parameters", "graph"):
        if key not in raw:
            raise WorkflowError(f"{source}: missing field {key!r}")
    wid, version = raw["id"], raw["version"]
    if not isinstance(wid, str) or not _ID.fullmatch(wid):
        raise WorkflowError(f"{source}: id must match {_ID.pattern}, got {shown(wid)}")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if not match or match["id"] != wid:
        raise WorkflowError(f"{source}: version must be '{wid}@<major>.<minor>.<patch>', got {shown(version)}")
    if len(version) > MAX_VERSION_CHARS:  # the service refuses a longer one, so a deploy of the image would fail
        raise WorkflowError(f"{source}: version {version!r} is over {MAX_VERSION_CHARS} characters (the API "
                            "service's and the log schema's limit): shorten the workflow id")
    if not isinstance(raw["description"], str):
        raise WorkflowError(f"{source}: description must be a string")
    graph = _check_graph(raw["graph"], source)
    if not isinstance(raw["parameters"], list):
        raise WorkflowError(f"{source}: parameters must be a list")
    params = tuple(_parse_parameter(p, graph, f"{source}: parameters[{i}]")
                   for i, p in enumerate(raw["parameters"]))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise WorkflowError(f"{source}: parameter names repeat: {names}")
    targets = [(p.node, p.input) for p in params]
    if len(set(targets)) != len(targets):
        raise WorkflowError(f"{source}: two parameters set the same node input")
    return Workflow(id=wid, version=version, description=raw["description"], parameters=params,
                    graph=graph, path=path)


def load_workflow(path: Path) -> Workflow:
    try:
        if path.stat().st_size > MAX_WORKFLOW_BYTES:
            raise WorkflowError(f"{path}: larger than {MAX_WORKFLOW_BYTES} bytes")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorkflowError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"{path}: not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # a number of over 4,300 digits; nesting deeper than Python's stack
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise WorkflowError(f"{path}: not valid JSON ({reason})") from None
    workflow = parse_workflow(raw, str(path), path)
    if path.stem != workflow.id:
        raise WorkflowError(f"{path}: file name must be {workflow.id}.json to match its id")
    return workflow


def load_workflows(directory: Path) -> dict[str, Workflow]:
    """All workflows of a directory, keyed by id. An empty or missing directory is an error."""
    if not directory.is_dir():
        raise WorkflowError(f"workflow directory {directory} does not exist")
    workflows = {}
    for path in sorted(directory.glob("*.json")):
        workflow = load_workflow(path)
        workflows[workflow.id] = workflow
    if not workflows:
        raise WorkflowError(f"no workflow (*.json) in {directory}")
    return workflows


def resolve_inputs(workflow: Workflow, inputs: dict[str, Any]) -> dict[str, Any]:
    """Checks a job's inputs against the parameters; returns every parameter's value (defaults filled)."""
    unknown = sorted(set(inputs) - {p.name for p in workflow.parameters})
    if unknown:
        known = ", ".join(p.name for p in workflow.parameters)
        raise InputError(f"unknown input {shown(unknown[0])} for workflow {workflow.version} (known: {known})")
    values: dict[str, Any] = {}
    for param in workflow.parameters:
        if param.name not in inputs or inputs[param.name] is None:
            if param.required:
                raise InputError(f"input {param.name!r} is required by workflow {workflow.version}")
            values[param.name] = param.default
            continue
        values[param.name] = _check_value(param, inputs[param.name], f"input {param.name!r}")
    return values


def build_graph(workflow: Workflow, values: dict[str, Any]) -> dict[str, Any]:
    """A fresh API-format graph with each parameter's value written into its node input."""
    graph = copy.deepcopy(workflow.graph)
    for param in workflow.parameters:
        graph[param.node]["inputs"][param.input] = values[param.name]
    return graph
