"""Turns ComfyUI's prompt validation errors into one line an operator can act on.

ComfyUI says `Value not in list: ckpt_name: 'x' not in []`; the operator needs to know which file,
where the worker looked, and the usual reasons ("No checkpoint models appear to be available" is
the phrase runpod-workers/worker-comfyui prints for this, kept so searches for it land here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .comfy_client import PromptRejected, doctor_command
from .manifest import FOLDERS, LOADER_INPUTS, MODEL_EXTENSIONS, Manifest
from .workflows import Workflow, shown

NO_CHECKPOINTS = "No checkpoint models appear to be available"
_BAKED = "the model was not baked into the image (rebuild it from models.yaml)"
_DIRECTORY = "it sits in the wrong directory for its loader"
_VOLUME = "a network volume holding it is not attached (production images must not depend on one)"
_UNET_AS_CHECKPOINT = "a UNet/diffusion model is used with the checkpoint loader (use UNETLoader + CLIP + VAE loaders)"


def likely_causes(class_type: str) -> str:
    """The usual reasons a loader cannot see its file; the UNet mix-up only applies to the checkpoint loader."""
    causes = [_BAKED, _DIRECTORY, *([_UNET_AS_CHECKPOINT] if class_type == "CheckpointLoaderSimple" else [])]
    return f"likely causes: {', '.join(causes)}, or {_VOLUME}"


def _search(file: str, roots: tuple[str, ...], folder: str) -> tuple[list[str], list[str]]:
    """Directories searched for the loader, and places the file was found anywhere under the roots."""
    searched = [str(Path(root) / d) for root in roots for d in FOLDERS[folder]]
    found = []
    for root in roots:
        for directory in sorted({d for dirs in FOLDERS.values() for d in dirs}):
            candidate = Path(root) / directory / file
            try:
                if candidate.is_file():
                    found.append(str(candidate))
            except OSError:
                continue
    return searched, found


def in_subfolders(file: str, directories: list[str]) -> list[tuple[str, str]]:
    """Where `file` sits in a subfolder of a loader directory, each as (its path, the name ComfyUI lists it by:
    its path under that directory, `sdxl/<file>`): a workflow naming it `<file>` does not find it."""
    if not file or "/" in file or "\\" in file:
        return []
    found = []
    for directory in directories:
        base = Path(directory)
        hits = sorted(Path(top) / file for top, files in _walk_once(base)
                      if file in files and Path(top) != base and (Path(top) / file).is_file())
        found += [(str(p), p.relative_to(base).as_posix()) for p in hits]
    return found


def _walk_once(base: Path) -> list[tuple[str, list[str]]]:
    """Each directory under `base` with the names in it, as ComfyUI's folder_paths.recursive_search walks them: into
    linked subfolders too (a folder linked in from elsewhere, `checkpoints/sdxl -> /mnt/sdxl`, lists as
    `sdxl/<file>`), which pathlib's rglob skips. But each real directory once, by the first path to it in name
    order: two links back up the tree (`checkpoints/a -> .`, `checkpoints/b -> .`) made os.walk's walk double at
    every level, 2**40 directories before the kernel's limit on links in a path stopped it, and the worker's first
    aid hung. What the hint needs is one name a file is listed by, not every name a loop gives it."""
    seen: set[tuple[int, int]] = set()
    walked = []
    for top, dirs, files in os.walk(base, followlinks=True):
        try:
            info = os.stat(top)
        except OSError:
            dirs[:] = []
            continue
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []  # walked already, under another name: its names are known, and so is all below it
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs.sort()  # the same first name every time, not the order the file system lists them in
        walked.append((top, files))
    return walked


def subfolder_hint(file: str, directories: list[str]) -> str | None:
    """What to do about `file` found only in a subfolder of its loader's directories, or None."""
    found = in_subfolders(file, directories)
    if not found:
        return None
    path, name = found[0]
    base = Path(path).parents[len(Path(name).parts) - 1]
    more = f" (and at {', '.join(p for p, _ in found[1:])})" if found[1:] else ""
    return (f"found in a subfolder: {path}{more}, which ComfyUI lists as {name!r} (a model's path under the loader "
            f"directory): the workflow must name it {name!r}, or move the file up into {base}")


def broken_links(paths: list[Path]) -> list[str]:
    """Which of `paths` are symbolic links to nothing (a dangling link: ComfyUI lists no file there), each with
    where it points."""
    broken = []
    for path in paths:
        try:
            if path.is_symlink() and not path.exists():
                broken.append(f"{path} -> {os.readlink(path)}")
        except OSError:
            continue
    return broken


def _unlistable(directories: list[str]) -> list[str]:
    """Loader directories that exist but this worker's user cannot list: ComfyUI, run as the same user, lists
    nothing there, which reads as an empty folder."""
    blocked = []
    for directory in directories:
        try:
            with os.scandir(directory):
                pass
        except PermissionError:
            blocked.append(directory)
        except OSError:
            continue
    return blocked


def _near_names(file: str, directories: list[str]) -> list[str]:
    """Files in the loader's directories that look like the one asked for under a name the loader skips: an
    unfinished download (`x.safetensors.part`) or another ending (`x.safetensor`, `x.gguf`)."""
    if not file:  # an empty name "starts" every name: nothing looks like it
        return []
    stem = Path(file).stem
    near = []
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            skipped = Path(name).suffix.lower() not in MODEL_EXTENSIONS
            if name != file and skipped and (name.startswith(file) or Path(name).stem == stem):
                near.append(str(Path(directory) / name))
    return near


def _listed(error: dict[str, Any]) -> list[Any] | None:
    """The files the loader lists, from the input spec ComfyUI echoes: [[files...], {...}] for a V1 node,
    ["COMBO", {"options": [files...]}] for a V3 one; None when it echoed none (a list over 20 long)."""
    config = (error.get("extra_info") or {}).get("input_config")
    if isinstance(config, list) and config and isinstance(config[0], list):
        return config[0]
    if (isinstance(config, list) and len(config) > 1 and config[0] == "COMBO" and isinstance(config[1], dict)
            and isinstance(config[1].get("options"), list)):
        return config[1]["options"]
    return None


def _model_message(node_id: str, class_type: str, error: dict[str, Any], roots: tuple[str, ...],
                   manifest: Manifest | None, stack: str | None = None) -> str | None:
    extra = error.get("extra_info") or {}
    input_name = extra.get("input_name")
    folder = LOADER_INPUTS.get(class_type, {}).get(input_name)
    if folder is None:
        return None
    file = str(extra.get("received_value"))
    listed = _listed(error)
    if listed is not None:  # VAELoader also lists decoders that are no file ("pixel_space", "taesdxl"): not models
        listed = [name for name in listed if Path(str(name)).suffix.lower() in MODEL_EXTENSIONS]
    searched, found = _search(file, roots, folder)
    shown = "nothing" if listed == [] else (listed if listed else "other files")
    parts = [(f"model file {file!r} is not available to ComfyUI: {class_type} (node {node_id}) input "
             f"{input_name} lists {shown}")]
    if folder == "checkpoints" and listed == []:  # None: ComfyUI did not echo a long list, so files exist
        parts.append(NO_CHECKPOINTS)
    parts.append(f"searched {', '.join(searched)}")
    readable = [p for p in found if any(Path(p).is_relative_to(d) for d in searched)]
    elsewhere = [p for p in found if p not in readable]
    if readable:
        parts.append(f"found at {', '.join(readable)}, where {class_type} looks, yet ComfyUI did not list it: "
                     f"ComfyUI reads another model root (its extra_model_paths.yaml; the worker's MODEL_ROOTS) "
                     f"or cannot read the file")
    if elsewhere:
        parts.append(f"found at {', '.join(elsewhere)}, a directory {class_type} does not read")
    dangling = broken_links([Path(d) / file for d in searched])
    if dangling:
        parts.append(f"{', '.join(dangling)} is a broken symbolic link (it points to nothing): link it to the "
                     "model file, or put the file itself there")
    nested = subfolder_hint(file, searched)
    if nested:
        parts.append(nested)
    blocked = _unlistable(searched)
    if blocked:
        parts.append(f"{', '.join(blocked)} cannot be listed by the worker's user (uid {os.geteuid()}), which "
                     f"ComfyUI runs as: its loader sees nothing there; make the directories 755 and the models 644")
    endings = ", ".join(sorted(MODEL_EXTENSIONS))
    if Path(file).suffix.lower() not in MODEL_EXTENSIONS:
        parts.append(f"{file!r} does not end in a model extension ComfyUI's loaders list ({endings})")
    near = _near_names(file, searched)
    if near:
        parts.append(f"found {', '.join(near)}: a name {class_type} skips (it lists only files ending in "
                     f"{endings}; a .part or .download ending is an unfinished download)")
    entries = manifest.find(file) if manifest else []
    if entries and entries[0].kind == "diffusion_model" and class_type == "CheckpointLoaderSimple":
        parts.append("models.yaml lists it as a diffusion model: load it with UNETLoader plus CLIP and VAE "
                     "loaders, not CheckpointLoaderSimple")
    elif manifest is not None and not entries:
        parts.append("models.yaml does not list it, so no image bakes it")
    parts.append(likely_causes(class_type))
    parts.append(f"run the worker preflight for a full report (`{doctor_command(stack)}` on the local target, "
                 "`python -m goldgate_worker.preflight` inside the image)")
    return "; ".join(parts)


def _workflow_fault(node_id: str, error: dict[str, Any], graph: dict[str, Any], workflow: Workflow,
                    values: dict[str, Any] | None) -> str | None:
    """Where the input ComfyUI refused got its value, and what to change: a parameter (its value in this job, its
    default) or the workflow's graph as shipped (a literal, a link). ComfyUI names only the node and the input, and
    a workflow author who reads "Value 2 bigger than max of -1" still has to find which file and field set it."""
    extra = error.get("extra_info") if isinstance(error.get("extra_info"), dict) else {}
    input_name = extra.get("input_name")
    node = graph.get(node_id) if isinstance(graph.get(node_id), dict) else None
    if not isinstance(input_name, str) or node is None:
        return None
    inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
    file = f"images/worker/workflows/{workflow.id}.json"
    param = next((p for p in workflow.parameters if p.node == node_id and p.input == input_name), None)
    if param is not None and param.type == "image":
        # The worker uploaded the file a moment before it queued the prompt: no value of the client's is at fault.
        # ComfyUI's upload and LoadImage both use its one input directory (--input-directory moves both), so the
        # file went after the upload, or the prompt reached another ComfyUI than the upload did.
        return (f"input {input_name} is set by image parameter {param.name!r} of {workflow.version}, whose input "
                f"image ({shown((values or {}).get(param.name))}) the worker had just put into ComfyUI's input folder "
                f"with POST /upload/image: the image and the job's values are not at fault, so send the job again; "
                f"if it repeats, something removes files from ComfyUI's input folder (another client of this "
                f"ComfyUI, a custom node), or the worker's COMFY_URL reaches more than one ComfyUI (the upload "
                f"went to one, the prompt to another): point it at this worker's own ComfyUI")
    if param is not None:
        value = (values or {}).get(param.name, param.default)
        source = "the workflow's default" if value == param.default else "this job's value"
        return (f"input {input_name} is set by parameter {param.name!r} of {workflow.version} ({source}, "
                f"{shown(value)}): the parameter lets through a value ComfyUI refuses; make its default, min, max "
                f"and choices fit the input in {file} (`goldgate build` warns of such a parameter)")
    if input_name not in inputs:
        return (f"{workflow.version}'s graph gives node {node_id} no input {input_name}: add it in {file} (export "
                f"the workflow from ComfyUI again, in API format)")
    value = inputs[input_name]
    if isinstance(value, list) and len(value) == 2 and isinstance(graph.get(value[0]), dict):
        source = graph[value[0]].get("class_type")
        return (f"{workflow.version}'s graph links node {node_id} input {input_name} to node {value[0]} output "
                f"{value[1]} ({source}): link it to a node that gives what the input takes, in {file} (export the "
                f"workflow from ComfyUI again, in API format)")
    return (f"no parameter sets it: the value {shown(value)} is {workflow.version}'s graph as shipped; fix node "
            f"{node_id} in {file}")


def explain_rejection(rejected: PromptRejected, graph: dict[str, Any], roots: tuple[str, ...],
                      manifest: Manifest | None = None, workflow: Workflow | None = None,
                      values: dict[str, Any] | None = None, stack: str | None = None) -> str:
    """One line naming what ComfyUI refused and, for missing models, where to look and why (the doctor command
    naming the worker's `stack` when it knows it); given the job's `workflow` (and its resolved `values`), what in
    the workflow file set each other input refused."""
    lines: list[str] = []
    for node_id, node_error in sorted(rejected.node_errors.items()):
        if not isinstance(node_error, dict):
            continue
        class_type = str(node_error.get("class_type") or (graph.get(node_id) or {}).get("class_type"))
        for error in node_error.get("errors") or []:
            if not isinstance(error, dict):
                continue
            message = None
            if error.get("type") == "value_not_in_list":
                message = _model_message(node_id, class_type, error, roots, manifest, stack)
            if message is None:
                message = f"node {node_id} ({class_type}): {error.get('message')}: {error.get('details')}"
                fault = _workflow_fault(node_id, error, graph, workflow, values) if workflow else None
                if fault:
                    message = f"{message} ({fault})"
            lines.append(message)
    if not lines:
        top = rejected.error
        lines.append(f"{top.get('message')}: {top.get('details')}".strip(": "))
        missing = _missing_node_type(top)
        if missing is not None:
            lines.append(missing)
    return ("ComfyUI rejected the prompt: " + " | ".join(lines)).replace("\n", " ")


def _missing_node_type(top: dict[str, Any]) -> str | None:
    """What to do about ComfyUI's `missing_node_type` (a node type this image's ComfyUI does not have): the
    usual cause is a custom node the workflow was made with and the image does not install. When the image was built
    with its entry, rebuilding changes nothing: ComfyUI goes on without a node that fails to import at start (a
    missing dependency), printing `IMPORT FAILED` (the worker's `comfyui.output` lines), or the entry's `nodes` names
    a type the node does not register. On the local target the ComfyUI emulator says itself what it cannot run, so
    nothing is added there."""
    message = str(top.get("message") or "")
    if top.get("type") != "missing_node_type" or "[local target:" in message:
        return None
    extra = top.get("extra_info") if isinstance(top.get("extra_info"), dict) else {}
    class_type = extra.get("class_type") or message.partition("'")[2].rpartition("' not found")[0] or "?"
    return (f"this image's ComfyUI has no node type {str(class_type)[:100]!r}: if it comes from a custom node, "
            "add that to images/worker/custom_nodes.yaml (its url, the full commit you tested, and the type under "
            "`nodes`) and rebuild; if the image was built with that entry, the node likely failed to import when "
            "ComfyUI started (look for `IMPORT FAILED` in this worker's `comfyui.output` log lines: a missing "
            "dependency, a lock without it), or `nodes` names a type the node does not register (its "
            "NODE_CLASS_MAPPINGS keys); else the workflow was exported from a newer ComfyUI than the image's, or "
            "names a node by a title instead of its type")
