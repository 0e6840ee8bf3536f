"""Stand-ins for custom node types on the local target. The custom_nodes.yaml entry that installs a node may declare,
under `emulate:`, each type it provides as ComfyUI's /object_info lists it: its inputs (ComfyUI's type names, or the
`[TYPE, {options}]` form) and its output types. The ComfyUI emulator then lists the type in /object_info, validates a
prompt's links and values against it, and runs it.

A stand-in checks the graph's wiring and types, never the pixels: each IMAGE (or LATENT) output hands on the node's
first IMAGE (or LATENT) input, so the render changes with the stand-in's values but keeps the size made upstream (a
stand-in upscaler upscales nothing). The local references (scripts/golden-tests/references/local/) are emulator renders
anyway; what the node really computes is compared by the cloud's golden run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from goldgate.spec import show

from .backend import LATENT_PATH_TYPES, NODE_TYPES, CustomNodeTypes, NodeType

MAX_NAME_CHARS = 100
_STAND_IN_KEYS = ("inputs", "outputs")
_VALUE_TYPES = ("INT", "FLOAT")
# ComfyUI's own type names, to catch the same word in another case: ComfyUI compares types exactly, so an input typed
# `image` would refuse every IMAGE linked to it.
_COMFY_TYPES = frozenset({"IMAGE", "LATENT", "MASK", "MODEL", "CLIP", "VAE", "CONDITIONING", "INT", "FLOAT", "STRING",
                          "BOOLEAN", "CONTROL_NET", "UPSCALE_MODEL", "CLIP_VISION", "CLIP_VISION_OUTPUT", "STYLE_MODEL",
                          "GLIGEN", "NOISE", "SAMPLER", "SIGMAS", "GUIDER", "AUDIO", "VIDEO"})
_SCALARS = (str, int, float, bool, type(None))
EXAMPLE = "emulate: {TinyUpscale: {inputs: {image: IMAGE, scale_by: [FLOAT, {min: 1, max: 4}]}, outputs: [IMAGE]}}"


class StandInError(ValueError):
    """An entry's `emulate:` is not valid; the message names the entry, the node type and the field."""


def _type_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw or raw.strip() != raw or len(raw) > MAX_NAME_CHARS:
        raise StandInError(f"{where} must be a ComfyUI type name (IMAGE, LATENT, MASK, FLOAT, ...), got {show(raw)}")
    if raw != raw.upper() and raw.upper() in _COMFY_TYPES:
        raise StandInError(f"{where} is {raw!r}: ComfyUI's type names are upper case and compared exactly, so write "
                           f"{raw.upper()!r}")
    return raw


def _options(raw: Any, kind: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise StandInError(f"{where} options must be a mapping such as {{min: 1, max: 4, default: 2}}, got "
                           f"{show(raw)}")
    for key, value in raw.items():
        # What ComfyUI's options hold (min, default, tooltip, multiline...): served again by /object_info, where a
        # nested value made of YAML aliases would be written out in full.
        if not isinstance(value, _SCALARS) and not (isinstance(value, list) and all(isinstance(v, _SCALARS)
                                                                                  for v in value)):
            raise StandInError(f"{where} option {key!r} must be a number, a string, a boolean or a list of them, got "
                               f"{show(value)}")
    if kind in _VALUE_TYPES:
        for key in ("min", "max", "default", "step"):
            value = raw.get(key)
            if key in raw and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise StandInError(f"{where} {key} must be a number, got {show(value)}")
        if "min" in raw and "max" in raw and raw["min"] > raw["max"]:
            raise StandInError(f"{where} has min {raw['min']} above max {raw['max']}")
    return dict(raw)


def _input(raw: Any, where: str) -> tuple[Any, ...]:
    """One input as NodeType holds it: (TYPE,), (TYPE, options), or a COMBO's ([choices],) / ([choices], options)."""
    spec = [raw] if isinstance(raw, str) else raw
    if not isinstance(spec, list) or len(spec) not in (1, 2):
        raise StandInError(f"{where} must be a type name (IMAGE) or [TYPE, {{options}}] as ComfyUI's /object_info "
                           f"lists it, got {show(raw)}")
    kind = spec[0]
    if isinstance(kind, list):   # a COMBO: the choices themselves, as /object_info lists them
        if not kind or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in kind):
            raise StandInError(f"{where} lists no choices, or one that is not a string or number: {show(kind)}")
    else:
        kind = _type_name(kind, where)
    return (kind,) if len(spec) == 1 else (kind, _options(spec[1], kind, where))


def _stand_in(node_type: str, raw: Any, provider: str, where: str) -> NodeType:
    if not isinstance(raw, dict):
        raise StandInError(f"{where} must be a mapping with `inputs` and `outputs`, e.g. {EXAMPLE}")
    unknown = sorted(str(k) for k in raw if k not in _STAND_IN_KEYS)
    missing = [k for k in _STAND_IN_KEYS if k not in raw]
    if unknown or missing:
        said = f"has unknown field(s) {', '.join(unknown)}" if unknown else f"lacks {', '.join(missing)}"
        raise StandInError(f"{where} {said}: a stand-in takes `inputs` (name: TYPE or [TYPE, {{options}}]) and "
                           "`outputs` (a list of types)")
    inputs = raw["inputs"] if raw["inputs"] is not None else {}
    if not isinstance(inputs, dict) or not all(isinstance(k, str) and k for k in inputs):
        raise StandInError(f"{where}.inputs must map each input's name to its type, got {show(raw['inputs'])}")
    required = {name: _input(spec, f"{where}.inputs.{name}") for name, spec in inputs.items()}
    outputs = raw["outputs"]
    if not isinstance(outputs, list) or not outputs:
        raise StandInError(f"{where}.outputs must list the node's output types in ComfyUI's order (e.g. [IMAGE]), got "
                           f"{show(outputs)}; a node that saves or shows its result (an output node) has no stand-in: "
                           "save with SaveImage")
    types = tuple(_type_name(o, f"{where}.outputs[{i}]") for i, o in enumerate(outputs))
    for passed in LATENT_PATH_TYPES:
        if passed in types and not any(spec[0] == passed for spec in required.values()):
            raise StandInError(f"{where} has {passed} among its outputs but no {passed} input: a stand-in hands its first "
                               f"{passed} input on, it makes none (a node that loads or generates one cannot be "
                               "emulated: test its workflow on a cloud STAGING stack, --target cloud)")
    return NodeType(node_type, f"custom_nodes/{provider}", required, types, python_module=f"custom_nodes.{provider}")


def stand_ins(entry: Mapping[str, Any], where: str = "custom_nodes.yaml entry") -> dict[str, NodeType]:
    """The node types an entry of custom_nodes.yaml (as parsed: `name`, `nodes`, `emulate`) declares stand-ins for,
    each as the emulator's NodeType; {} without `emulate`. Raises StandInError naming what is wrong: a type its `nodes`
    does not list (the stand-in of a type the image would not have), one the emulator runs already, a malformed input
    or output, an IMAGE or LATENT output with no input of that type to hand on."""
    declared = entry.get("emulate")
    if declared is None:
        return {}
    provider = str(entry.get("name") or "?")
    if not isinstance(declared, dict):
        raise StandInError(f"{where}: `emulate` must map each node type to its stand-in, e.g. {EXAMPLE}")
    nodes = list(entry.get("nodes") or ())
    if not nodes:
        raise StandInError(f"{where}: entry {provider} lists no `nodes`: list the types it provides, then give each "
                           "one your workflows use a stand-in under `emulate`")
    found = {}
    for node_type, raw in declared.items():
        if node_type not in nodes:
            near = difflib.get_close_matches(str(node_type), nodes, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise StandInError(f"{where}: `emulate` has {show(node_type)}, which entry {provider}'s `nodes` does not "
                               f"list ({', '.join(map(repr, nodes))}){hint}: a stand-in is for a type the image "
                               "installs; list it under `nodes` too, or fix the name")
        if node_type in NODE_TYPES:
            raise StandInError(f"{where}: `emulate` has {node_type!r}, a node type the ComfyUI emulator runs already "
                               "(NODE_TYPES in goldgate/local/comfyui/backend.py): remove its stand-in")
        found[node_type] = _stand_in(node_type, raw, provider, f"{where}: emulate.{node_type}")
    return found


def custom_node_types(path: Path) -> CustomNodeTypes:
    """The node types a custom_nodes.yaml declares, each with its entry, and the stand-ins its entries declare under
    `emulate:`. An entry whose `emulate:` is not valid runs none of its types: a job using one is refused saying why
    (`refused`), where the golden run's author reads it; the emulator's start is no place anyone looks. A file that
    is not valid declares nothing here: the build refuses it, so no snapshot holds one."""
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes

    try:
        declared = load_custom_nodes(path)
    except CustomNodesError:
        return CustomNodeTypes()
    found = CustomNodeTypes({t: entry.described for entry in declared.entries for t in entry.nodes})
    for index, entry in enumerate(declared.entries):
        # `emulate` as the entry gives it (CustomNode.emulate: custom_nodes.py keeps it raw, since the image never
        # reads it); getattr: a custom_nodes.py from before `emulate` keeps none.
        raw = {"name": entry.name, "nodes": entry.nodes, "emulate": getattr(entry, "emulate", None)}
        try:
            found.stand_ins.update(stand_ins(raw, f"{path}: custom_nodes[{index}] ({entry.name})"))
        except StandInError as exc:
            found.refused.update(dict.fromkeys(entry.nodes, str(exc)))
    return found
