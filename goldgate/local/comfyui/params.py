"""Workflow parameters checked against ComfyUI's own input specs (NODE_TYPES): the parameter type each
input takes, its min/max and COMBO list, and that a parameter bounds what a client may send as tightly as the
input does (a min/max where the input has one, choices on a COMBO). A contradiction is otherwise found by
ComfyUI only when a job runs (the golden run, or a client's value in production); `goldgate build` prints
these as warnings, not refusals, since a real ComfyUI's node may be newer than the spec kept here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .backend import INPUT_IMAGES, NODE_TYPES, NodeType

if TYPE_CHECKING:
    from images.worker.workflows import Parameter, Workflow

# The workflow parameter types a ComfyUI input type takes (an `integer` fits a FLOAT: JSON has one number).
_FITS = {"INT": ("integer",), "FLOAT": ("number", "integer"), "STRING": ("string",), "BOOLEAN": ("boolean",)}
_COMBO = ("string",)


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bound_problems(param: Parameter, kind: str, options: Mapping[str, Any]) -> list[str]:
    low, high = options.get("min"), options.get("max")
    problems = []
    for field, value in (("min", param.min), ("max", param.max), ("default", param.default)):
        if not _is_number(value):
            continue
        if low is not None and value < low:
            problems.append(f"{field} {_shown(value)} is below the {kind} input's min {_shown(low)}")
        elif high is not None and value > high:
            problems.append(f"{field} {_shown(value)} is above the {kind} input's max {_shown(high)}")
    outside = [choice for choice in param.choices or () if _is_number(choice)
               and ((low is not None and choice < low) or (high is not None and choice > high))]
    if outside:
        range_ = " and ".join(f"{name} {_shown(bound)}" for name, bound in (("min", low), ("max", high))
                              if bound is not None)
        problems.append(f"choices {', '.join(map(_shown, outside))} are outside the {kind} input's {range_}")
    if param.choices is None:
        # Without a bound here the service and the worker pass any number: ComfyUI refuses it on the GPU.
        for field, bound, side, advice in (("min", low, "below", "or more"),
                                           ("max", high, "above", "or less")):
            if bound is not None and getattr(param, field) is None:
                problems.append(f"no {field}, so a client's value {side} the {kind} input's {field} "
                                f"{_shown(bound)} is refused by ComfyUI only when its job runs: write "
                                f"\"{field}\": {_shown(bound)} {advice}")
    return problems


def _combo_problems(param: Parameter, listed: list[Any]) -> list[str]:
    problems = []
    outside = [choice for choice in param.choices or () if choice not in listed]
    if outside:
        problems.append(f"choices {outside} are not in the input's list")
    if param.default is not None and param.default not in listed:
        problems.append(f"default {_shown(param.default)} is not in the input's list")
    if param.choices is None and param.type in _COMBO:
        problems.append("no choices, so a client's string outside the input's list is refused by ComfyUI "
                        "only when its job runs: write \"choices\" from the list")
    if problems:
        shown = listed if len(listed) <= 12 else [*listed[:12], f"... {len(listed) - 12} more"]
        problems[-1] += f" ({', '.join(map(str, shown))})"
    return problems


def _type_problem(param: Parameter, fits: tuple[str, ...], kind: str) -> list[str]:
    if param.type in fits:
        return []
    return [f"type {param.type}, but the input is {kind}: declare it {fits[0]}"]


def _input_problems(param: Parameter, spec: tuple[Any, ...]) -> list[str]:
    kind = spec[0]
    if isinstance(kind, tuple) and kind and kind[0] == "__models__":
        # a model file list: which files exist is the manifest's check (models.yaml), not this one
        problems = _type_problem(param, _COMBO, "a COMBO of model files")
        if not problems and param.choices is None:
            problems.append(f"no choices, so a client's file name outside models/{kind[1]} is refused "
                            "by ComfyUI only when its job runs: write \"choices\", the files of models.yaml "
                            "it may load")
        return problems
    if kind == INPUT_IMAGES:
        # A string names a file already in ComfyUI's input folder (one the image ships); an image, a client's upload.
        return _type_problem(param, ("image", "string"), "an image file LoadImage loads from ComfyUI's input folder")
    if param.type == "image":
        shown = kind if isinstance(kind, str) else "a COMBO"
        return [f"type image, but the input is {shown}: an image parameter sets the image input of a LoadImage node"]
    if isinstance(kind, list):
        return _type_problem(param, _COMBO, "a COMBO") + _combo_problems(param, kind)
    if kind not in _FITS:
        return [f"the input takes a {kind} link from another node, not a value"]
    problems = _type_problem(param, _FITS[kind], kind)
    if kind in ("INT", "FLOAT") and param.type in ("integer", "number"):
        problems += _bound_problems(param, kind, spec[1] if len(spec) > 1 else {})
    return problems


def parameter_problems(workflow: Workflow,
                       node_types: Mapping[str, NodeType] = NODE_TYPES) -> list[str]:
    """One line per contradiction between a parameter of `workflow` and the ComfyUI input it sets, each
    naming the workflow, parameter, node and input. A parameter on a node type `node_types` lacks is
    skipped (a custom node, or a core one the emulator does not know: nothing here to check it against)."""
    problems = []
    for param in workflow.parameters:
        class_type = workflow.graph[param.node].get("class_type")
        node_type = node_types.get(class_type) if isinstance(class_type, str) else None
        if node_type is None:
            continue
        where = (f"workflow {workflow.id} parameter {param.name} "
                 f"(node {param.node} {class_type}, input {param.input})")
        spec = node_type.required.get(param.input)
        if spec is None:
            names = ", ".join(sorted(node_type.required))
            problems.append(f"{where}: {class_type} has no input {param.input} (its inputs: {names})")
            continue
        problems += [f"{where}: {problem}" for problem in _input_problems(param, spec)]
    return problems
