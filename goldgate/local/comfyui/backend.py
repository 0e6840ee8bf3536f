"""The emulated ComfyUI: its node catalogue, model folders, prompt validation, queue, history, uploaded
inputs and the events its /ws sockets hear.

Validation follows ComfyUI's execution.validate_prompt/validate_inputs: the same error types,
messages and `details` text (`ckpt_name: 'x' not in []`), with loader choices listed from the
files really present under the models directory, exactly as ComfyUI's folder_paths does (linked subfolders
and broken links included). When a prompt runs, each loader it needs opens its file as ComfyUI's does: a
listed name with no file behind it (a link whose target is gone) fails that loader, with ComfyUI's words.
Execution renders a PNG whose size comes from the latent node (or, img2img, the image a LoadImage loads from the
input folder /upload/image writes) and whose pixels come from every value upstream of the SaveImage node (seed,
prompt, steps..., a loaded image's bytes), so mis-wired parameters and a wrong input image show. LoadImage's file is
checked as its VALIDATE_INPUTS checks it (ComfyUI's `custom_validation_failed`), and opened when the prompt runs: an
animated file renders one image per frame, as ComfyUI batches them (a multi-picture JPEG its first picture alone).
Each output node is reported as one `executing` + `executed` pair (ComfyUI reports every node it runs).
It knows a fixed set of node types (NODE_TYPES, each with ComfyUI's own input specs), and the custom node types the
image's custom_nodes.yaml gives a stand-in (`emulate:`, goldgate.local.comfyui.stand_ins): those it lists, validates and
runs as its own, each IMAGE or LATENT output handing on the node's first input of that type. A prompt using any other
type gets ComfyUI's `missing_node_type` answer, its message followed by what the local target cannot emulate and what
to do (`not_emulated`), since a real ComfyUI may have that node; for a node type the image's custom_nodes.yaml
declares without a stand-in, that the image installs it, which entry does, and the `emulate:` way out
(`not_runnable_custom`).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import mimetypes
import os
import queue
import random
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, ImageSequence

# ComfyUI folder_paths: folder name -> directories scanned (relative to the models dir), in its order: a loader opens
# the file of the first directory that has it (get_full_path), so the order says which of two same-named files loads.
FOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints",),
    "diffusion_models": ("unet", "diffusion_models"),
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
    "loras": ("loras",),
}
MODEL_EXTENSIONS = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
# KSampler's choices as current ComfyUI lists them (comfy/samplers.py SAMPLER_NAMES and SCHEDULER_NAMES, Dec 2025), in
# its order: a workflow using any of them (lcm, dpmpp_3m_sde_gpu, kl_optimal...) runs on ComfyUI, so it must validate here.
SAMPLERS = ["euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
            "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
            "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
            "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
            "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
            "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
            "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2"]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
              "kl_optimal"]
# The `type` choices of CLIPLoader and DualCLIPLoader (nodes.py, Dec 2025). flux, sdxl and hunyuan_video are dual
# types only: ComfyUI refuses them on a single CLIPLoader, so a workflow using one must not pass here.
CLIP_TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos", "lumina2",
              "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image", "flux2", "ovis",
              "longcat_image"]
DUAL_CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image", "hunyuan_video_15", "kandinsky5",
                   "kandinsky5_image", "ltxv", "newbie", "ace"]
MAX_RESOLUTION = 16384
INT_MAX = 0xFFFFFFFFFFFFFFFF
HOLD_POLL_S = 0.05  # how often a prompt held by the render gate looks for its release
# ComfyUI's MAXIMUM_HISTORY_SIZE: past it, each finished prompt drops the oldest entry (a worker that lives for
# many jobs keeps a bounded history, and a client polling an old prompt gets {} as from ComfyUI).
MAX_HISTORY = 10000
# The input types a render follows up to the latent that sizes its image (EmptyLatentImage), through any node type.
LATENT_PATH_TYPES = ("IMAGE", "LATENT")
# LoadImage's `image` COMBO: the image files at the top of the input folder (nodes.py LoadImage.INPUT_TYPES lists
# os.listdir(input) kept by folder_paths.filter_files_content_types), resolved when /object_info or a prompt asks.
INPUT_IMAGES = ("__input_images__",)


@dataclass(frozen=True)
class NodeType:
    """One node class: required inputs as ComfyUI declares them, output types, whether it is an output."""

    name: str
    category: str
    required: dict[str, tuple[Any, ...]]
    outputs: tuple[str, ...]
    output_node: bool = False
    python_module: str = "nodes"   # as /object_info says where a node comes from: custom_nodes.<folder> for a stand-in


def _models(folder: str) -> tuple[Any, ...]:
    return (("__models__", folder),)


NODE_TYPES: dict[str, NodeType] = {n.name: n for n in (
    NodeType("CheckpointLoaderSimple", "loaders", {"ckpt_name": _models("checkpoints")}, ("MODEL", "CLIP", "VAE")),
    NodeType("UNETLoader", "advanced/loaders", {
        "unet_name": _models("diffusion_models"),
        "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],)}, ("MODEL",)),
    NodeType("CLIPLoader", "advanced/loaders", {
        "clip_name": _models("text_encoders"), "type": (CLIP_TYPES,)}, ("CLIP",)),
    NodeType("DualCLIPLoader", "advanced/loaders", {
        "clip_name1": _models("text_encoders"), "clip_name2": _models("text_encoders"),
        "type": (DUAL_CLIP_TYPES,)}, ("CLIP",)),
    NodeType("VAELoader", "loaders", {"vae_name": _models("vae")}, ("VAE",)),
    NodeType("LoraLoader", "loaders", {
        "model": ("MODEL",), "clip": ("CLIP",), "lora_name": _models("loras"),
        "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
        "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})},
        ("MODEL", "CLIP")),
    NodeType("LoraLoaderModelOnly", "loaders", {
        "model": ("MODEL",), "lora_name": _models("loras"),
        "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})}, ("MODEL",)),
    # clip skip: common in SD 1.5 workflows (core ComfyUI, nodes.py).
    NodeType("CLIPSetLastLayer", "conditioning", {
        "clip": ("CLIP",), "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1, "step": 1})},
        ("CLIP",)),
    NodeType("CLIPTextEncode", "conditioning", {
        "text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}, ("CONDITIONING",)),
    NodeType("EmptyLatentImage", "latent", {
        "width": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
        "height": ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}, ("LATENT",)),
    NodeType("EmptySD3LatentImage", "latent/sd3", {
        "width": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 16}),
        "height": ("INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 16}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}, ("LATENT",)),
    NodeType("KSampler", "sampling", {
        "model": ("MODEL",),
        "seed": ("INT", {"default": 0, "min": 0, "max": INT_MAX}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,),
        "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
        "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}, ("LATENT",)),
    NodeType("KSamplerAdvanced", "sampling", {
        "model": ("MODEL",), "add_noise": (["enable", "disable"],),
        "noise_seed": ("INT", {"default": 0, "min": 0, "max": INT_MAX}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,),
        "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
        "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
        "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
        "return_with_leftover_noise": (["disable", "enable"],)}, ("LATENT",)),
    NodeType("VAEDecode", "latent", {"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
    NodeType("VAEEncode", "latent", {"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",)),
    # Its `image` is checked by its VALIDATE_INPUTS (the file exists), not against the list (_validate_node).
    NodeType("LoadImage", "image", {"image": (INPUT_IMAGES, {"image_upload": True})}, ("IMAGE", "MASK")),
    NodeType("SaveImage", "image", {
        "images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}, (), output_node=True),
)}


def not_emulated(class_type: str) -> str:
    """What ComfyUI's "not found" means on the local target: this emulator knows a fixed set of node types, so a
    node a real ComfyUI may well run (a core node it lacks, a custom node the image installs) fails here. What to
    do comes first: a summary line may show only the start of a job's error."""
    return (f"[local target: the ComfyUI emulator lacks {class_type!r}, which a real ComfyUI may have (core, or a "
            f"custom node the image installs): test this workflow on a cloud STAGING stack (--target cloud); for a "
            f"custom node, list the type under its custom_nodes.yaml entry's `nodes` and give it a stand-in under "
            f"`emulate:` there; for a core node, emulate it in NODE_TYPES, goldgate/local/comfyui/backend.py (\"Add "
            f"a workflow\" in images/worker/README.md). It emulates {', '.join(sorted(NODE_TYPES))}]")


def not_runnable_custom(class_type: str, provider: str, refused: str | None = None) -> str:
    """What ComfyUI's "not found" means on the local target for a node type custom_nodes.yaml declares without a
    stand-in: the image installs it, and a real ComfyUI there runs it, but this emulator runs no custom node's code (it
    cannot know what the node computes, nor even its outputs, so it neither lists it in /object_info nor passes an
    image through it) until the entry declares the type's inputs and outputs under `emulate:`. `refused`: why the
    entry's `emulate:` was refused, when it has one."""
    way_out = (f"fix its stand-in: {refused}" if refused is not None else
               f"give it a stand-in under `emulate:` in that entry, e.g. emulate: {{{class_type}: {{inputs: {{image: "
               f"IMAGE}}, outputs: [IMAGE]}}}} (\"Add a workflow\" in images/worker/README.md)")
    return (f"[local target: the image installs {class_type!r} with the custom node {provider} (custom_nodes.yaml), "
            f"but the ComfyUI emulator runs no custom node's code: test this workflow on a cloud STAGING stack "
            f"(--target cloud), or {way_out}]")


@dataclass(frozen=True)
class CustomNodeTypes:
    """The image's custom node types (custom_nodes.yaml) as the emulator knows them."""

    providers: dict[str, str] = field(default_factory=dict)      # node type -> the entry that installs it
    stand_ins: dict[str, NodeType] = field(default_factory=dict)  # node type -> the stand-in its entry declares
    refused: dict[str, str] = field(default_factory=dict)        # node type -> why its entry's `emulate` is refused


class PromptInvalid(Exception):
    """ComfyUI's answer to a prompt that fails validation: `error` and `node_errors` as it sends them."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error
        self.node_errors = node_errors


def _error(kind: str, message: str, details: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


def _type_name(exc: BaseException) -> str:
    """ComfyUI's full_type_name: builtins bare, anything else module-qualified."""
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _execution_error(task: _Task, node_id: str, executed: list[str], exc: Exception) -> dict[str, Any]:
    """ComfyUI's `execution_error` message (execution.py handle_execution_error); add_message stamps it."""
    inputs = task.prompt[node_id].get("inputs") or {}
    return {"prompt_id": task.prompt_id, "node_id": node_id, "node_type": task.prompt[node_id]["class_type"],
            "executed": executed, "exception_message": str(exc),
            "exception_type": _type_name(exc),
            "traceback": traceback.format_tb(exc.__traceback__),
            "current_inputs": {k: [v if isinstance(v, (int, float, bool, str)) else str(v)] for k, v in inputs.items()},
            "current_outputs": executed}


class _LoaderFailed(Exception):
    """A loader node failed at run time: ComfyUI reports the node that raised, not the output it was run for."""

    def __init__(self, node_id: str, error: Exception) -> None:
        super().__init__(str(error))
        self.node_id = node_id
        self.error = error


def _opens_nothing(class_type: str, inputs: dict[str, Any]) -> bool:
    """A LoRA loader at zero strength hands its inputs on without opening its file (nodes.py LoraLoader.load_lora;
    LoraLoaderModelOnly calls it with strength_clip 0)."""
    if class_type == "LoraLoader":
        return inputs.get("strength_model") == 0 and inputs.get("strength_clip") == 0
    return class_type == "LoraLoaderModelOnly" and inputs.get("strength_model") == 0


def _dependencies_first(prompt: dict[str, Any], output: str) -> list[str]:
    """The nodes `output` needs, each after the nodes its linked inputs come from (inputs in the node's order)."""
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(output, False)]
    while stack:  # iterative: a prompt's chain of nodes may be longer than Python's recursion allows
        node_id, expanded = stack.pop()
        if expanded:
            order.append(node_id)
            continue
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.append((node_id, True))
        links = [str(v[0]) for v in (prompt[node_id].get("inputs") or {}).values() if isinstance(v, list)]
        stack.extend((linked, False) for linked in reversed(links) if linked not in seen)
    return order


@dataclass
class _Task:
    number: float  # the queue runs the lowest first: a prompt queued at the front has a negative one
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def as_list(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class _State:
    queue: list[_Task] = field(default_factory=list)
    running: _Task | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    number: int = 0


class ComfyBackend:
    """State and rules of one emulated ComfyUI instance. Thread-safe; one executor thread renders."""

    def __init__(self, models_dir: Path, output_dir: Path, input_dir: Path, temp_dir: Path,
                 render_delay_s: float = 0.0, interrupt_lag_s: float = 0.0,
                 hold_dir: Path | None = None, custom_nodes: CustomNodeTypes | None = None) -> None:
        self.models_dir = Path(models_dir)
        # The image's custom node types (custom_nodes.yaml): one with a stand-in runs as a node type of its own; any
        # other is refused as ComfyUI refuses a node it lacks, with its entry named (not_runnable_custom).
        self.custom_nodes = custom_nodes or CustomNodeTypes()
        self.output_dir = Path(output_dir)
        # ComfyUI's folder_paths.get_directory_by_type: where /upload/image writes and /view reads, per `type`.
        self.dirs = {"output": self.output_dir, "input": Path(input_dir), "temp": Path(temp_dir)}
        for directory in self.dirs.values():
            directory.mkdir(parents=True, exist_ok=True)
        self.render_delay_s = render_delay_s
        # ComfyUI stops an interrupted prompt at the sampler's next step, not when /interrupt answers.
        self.interrupt_lag_s = interrupt_lag_s
        # A drill's render gate: while `hold_dir/release` is absent, each prompt renders on (a job held mid-run
        # until the drill has done its act, however slow the machine is).
        self.hold_dir = Path(hold_dir) if hold_dir is not None else None
        self._state = _State()
        self._lock = threading.Condition()
        self._interrupt = threading.Event()
        self._stopped = False
        self._sockets: dict[str, queue.SimpleQueue[dict[str, Any]]] = {}  # /ws clients by their clientId
        self._thread = threading.Thread(target=self._execute_loop, name="comfyui-emulator-exec", daemon=True)
        self._thread.start()

    # -- models --------------------------------------------------------------------------------------
    def models(self, folder: str) -> list[str]:
        """Files a loader lists, as ComfyUI's folder_paths.get_filename_list does (relative, sorted). Its
        recursive_search walks each directory with os.walk(followlinks=True), so it enters linked subfolders
        (`checkpoints/sdxl -> /mnt/sdxl` lists `sdxl/<file>`), and keeps every entry that is not a directory: a
        symbolic link whose target is gone is listed too, its prompt validates, and its loader fails when it runs
        (`load_models`). pathlib's rglob entered no linked folder and `is_file` dropped the broken link."""
        names: set[str] = set()
        for directory in FOLDERS.get(folder, ()):
            base = os.path.join(self.models_dir, directory)
            if not os.path.isdir(base):
                continue
            for top, subdirs, files in os.walk(base, followlinks=True):
                subdirs[:] = [d for d in subdirs if d != ".git"]  # recursive_search's excluded_dir_names
                for name in files:
                    relative = os.path.relpath(os.path.join(top, name), base)
                    if os.path.splitext(relative)[1].lower() in MODEL_EXTENSIONS:
                        names.add(relative)
        return sorted(names)

    def model_path(self, folder: str, name: str) -> str | None:
        """The file a loader opens for the listed `name`, as folder_paths.get_full_path finds it: in the first of the
        folder's directories where it is a file (a link to one is followed); None when there is none: a link whose
        target is gone (ComfyUI logs "exists but doesn't link anywhere, skipping" and looks on), a file removed."""
        name = os.path.relpath(os.path.join("/", name), "/")
        for directory in FOLDERS.get(folder, ()):
            path = os.path.join(self.models_dir, directory, name)
            if os.path.isfile(path):
                return path
        return None

    def load_models(self, prompt: dict[str, Any], output: str) -> None:
        """Run the loaders `output` depends on, as far as a render without a GPU can: each opens the file its model
        input names (nodes.py: folder_paths.get_full_path_or_raise), dependencies first, as ComfyUI runs them. A
        name ComfyUI listed but cannot open fails that loader with ComfyUI's FileNotFoundError (_LoaderFailed).
        ComfyUI keeps the outputs of a node whose inputs did not change since the prompt before and does not run
        it again; the emulator caches nothing (execution_cached is always empty), so each prompt opens its files."""
        for node_id in _dependencies_first(prompt, output):
            node = prompt[node_id]
            inputs = node.get("inputs") or {}
            if _opens_nothing(node["class_type"], inputs):
                continue
            if node["class_type"] == "LoadImage":
                self._loaded_image(node_id, inputs.get("image"))
                continue
            if node["class_type"] == "VAEEncode":
                self._encodable(prompt, node_id)
                continue
            for name, spec in self._known(node).required.items():
                if not (isinstance(spec[0], tuple) and spec[0][0] == "__models__"):
                    continue
                folder, filename = spec[0][1], str(inputs.get(name))
                if self.model_path(folder, filename) is None:
                    try:  # raised, so that its traceback is the loader's, as in ComfyUI's execution_error
                        raise FileNotFoundError(f"Model in folder '{folder}' with filename '{filename}' not found.")
                    except FileNotFoundError as exc:
                        raise _LoaderFailed(node_id, exc) from None

    def _encodable(self, prompt: dict[str, Any], node_id: str) -> None:
        """A VAEEncode crops its pixels to multiples of 8 (nodes.py vae_encode_crop_pixels): an image under 8 pixels
        on a side leaves nothing to encode, and the node fails, as ComfyUI's VAE does on an empty tensor."""
        size = self._latent(prompt, node_id)
        width, height = int(size["width"]), int(size["height"])
        if width < 8 or height < 8:
            try:  # raised, so that its traceback is the node's, as in ComfyUI's execution_error
                raise RuntimeError(f"cannot encode an image of {width}x{height} pixels: the VAE crops each side to a "
                                   f"multiple of 8, which leaves {width // 8 * 8}x{height // 8 * 8}")
            except RuntimeError as exc:
                raise _LoaderFailed(node_id, exc) from None

    # -- uploaded inputs -----------------------------------------------------------------------------
    def input_images(self) -> list[str]:
        """The files LoadImage lists: those at the top of the input folder whose name says image (mimetypes, as
        folder_paths.filter_files_content_types reads it), sorted; an upload into a subfolder is not listed, yet
        loads by its `subfolder/name`."""
        root = self.dirs["input"]
        names = [n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n))]
        return sorted(n for n in names if (mimetypes.guess_type(n)[0] or "").split("/")[0] == "image")

    def input_image(self, name: str) -> Path | None:
        """The file a LoadImage `image` names (folder_paths.get_annotated_filepath: "x.png [output]" is in the output
        folder, a plain name in the input folder), None when nothing is there (exists_annotated_filepath). Unlike
        ComfyUI, a name out of its folder ('../x') is nothing here: the emulator reads no file of the host's."""
        name, kind = self.annotated(name, "input")  # a value that is no string raises, as in ComfyUI
        root = os.path.abspath(self.dirs[kind])
        path = os.path.abspath(os.path.join(root, name))
        if os.path.commonpath((root, path)) != root or not os.path.exists(path):
            return None
        return Path(path)

    def _loaded_image(self, node_id: str, name: Any) -> tuple[int, int, str, int]:
        """What LoadImage.load_image reads of its file: its size (EXIF orientation applied), its bytes' sha256 (its
        IS_CHANGED) and how many images its IMAGE output batches: every frame (PIL.ImageSequence) of the first one's
        size, but one for a multi-picture JPEG (MPO), of which ComfyUI keeps the first. A file that is gone or not an
        image fails the node (_LoaderFailed), as Image.open does."""
        try:
            path = self.input_image(name)
            if path is None:
                raise FileNotFoundError(f"[Errno 2] No such file or directory: {name!r}")
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as image:
                sizes = [ImageOps.exif_transpose(frame).size for frame in ImageSequence.Iterator(image)]
                batched = 1 if image.format == "MPO" else sum(size == sizes[0] for size in sizes)
        except Exception as exc:  # noqa: BLE001 - ComfyUI reports what the node raised
            raise _LoaderFailed(node_id, exc) from None
        return *sizes[0], hashlib.sha256(data).hexdigest(), batched

    def node_type(self, class_type: Any) -> NodeType | None:
        """The node type a prompt's `class_type` names: one of ComfyUI's this emulator runs, or a custom node's
        stand-in; None for any other (ComfyUI's "not found"). An unhashable one raises TypeError, as ComfyUI's
        lookup in NODE_CLASS_MAPPINGS does (its answer is a 500)."""
        return NODE_TYPES.get(class_type) or self.custom_nodes.stand_ins.get(class_type)

    @property
    def node_types(self) -> dict[str, NodeType]:
        """Every node type it lists in /object_info and runs: ComfyUI's own, then the stand-ins."""
        return {**self.custom_nodes.stand_ins, **NODE_TYPES}

    def _known(self, node: dict[str, Any]) -> NodeType:
        """The node type of a node of a validated prompt (validate_prompt refuses one naming any other)."""
        found = self.node_type(node["class_type"])
        if found is None:
            raise KeyError(node["class_type"])
        return found

    def resolved_inputs(self, node_type: NodeType) -> dict[str, tuple[Any, ...]]:
        resolved = {}
        for name, spec in node_type.required.items():
            if isinstance(spec[0], tuple) and spec[0][0] == "__models__":
                resolved[name] = (self.models(spec[0][1]),)
            elif spec[0] == INPUT_IMAGES:
                resolved[name] = (self.input_images(), *spec[1:])
            else:
                resolved[name] = spec
        return resolved

    # -- validation ----------------------------------------------------------------------------------
    def _validate_node(self, prompt: dict[str, Any], node_id: str, validated: dict[str, Any]) -> tuple[bool, list]:
        if node_id in validated:
            return validated[node_id]
        node = prompt[node_id]
        node_type = self._known(node)
        inputs = node.get("inputs") or {}
        required = self.resolved_inputs(node_type)
        errors: list[dict[str, Any]] = []
        valid = True
        for name, info in required.items():
            if name not in inputs:
                errors.append(_error("required_input_missing", "Required input is missing", name,
                                     {"input_name": name}))
                continue
            value = inputs[name]
            type_input = info[0]
            if isinstance(value, list):
                # A node id is the prompt's key as sent, a string: ComfyUI looks [4, 0] up as 4 and fails to find it.
                if (len(value) != 2 or not isinstance(value[0], str) or value[0] not in prompt
                        or not isinstance(value[1], int)):
                    errors.append(_error("bad_linked_input",
                                         "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                         name, {"input_name": name, "input_config": info, "received_value": value}))
                    continue
                linked = prompt[str(value[0])]
                linked_type = self._known(linked)
                received = linked_type.outputs[value[1]] if 0 <= value[1] < len(linked_type.outputs) else None
                if received != type_input:
                    errors.append(_error("return_type_mismatch", "Return type mismatch between linked nodes",
                                         f"{name}, received_type({received}) mismatch input_type({type_input})",
                                         {"input_name": name, "input_config": info, "received_type": received,
                                          "linked_node": value}))
                    continue
                ok, _ = self._validate_node(prompt, str(value[0]), validated)
                if not ok:
                    valid = False
                continue
            if node_type.required[name][0] == INPUT_IMAGES:
                # LoadImage's VALIDATE_INPUTS takes `image`: ComfyUI then skips the list check and asks it instead.
                if self.input_image(value) is None:
                    errors.append(_error("custom_validation_failed", "Custom validation failed for node",
                                         f"{name} - Invalid image file: {value}",
                                         {"input_name": name, "input_config": info, "received_value": value}))
                continue
            error = self._check_value(name, value, info)
            if error is not None:
                errors.append(error)
            elif type_input in ("INT", "FLOAT"):
                inputs[name] = int(value) if type_input == "INT" else float(value)
        result = (valid and not errors, errors)
        validated[node_id] = result
        return result

    @staticmethod
    def _check_value(name: str, value: Any, info: tuple[Any, ...]) -> dict[str, Any] | None:
        type_input = info[0]
        options = info[1] if len(info) > 1 else {}
        if type_input in ("INT", "FLOAT", "STRING"):
            try:
                if type_input == "INT":
                    value = int(value)
                elif type_input == "FLOAT":
                    value = float(value)
                else:
                    value = str(value)
            except (TypeError, ValueError) as exc:
                return _error("invalid_input_type", f"Failed to convert an input value to a {type_input} value",
                              f"{name}, {value}, {exc}", {"input_name": name, "input_config": info,
                                                          "received_value": value, "exception_message": str(exc)})
            if "min" in options and value < options["min"]:
                return _error("value_smaller_than_min", f"Value {value} smaller than min of {options['min']}",
                              name, {"input_name": name, "input_config": info, "received_value": value})
            if "max" in options and value > options["max"]:
                return _error("value_bigger_than_max", f"Value {value} bigger than max of {options['max']}",
                              name, {"input_name": name, "input_config": info, "received_value": value})
            return None
        if isinstance(type_input, list) and value not in type_input:
            # ComfyUI does not echo gigantic lists (scanned model paths) back.
            big = len(type_input) > 20
            listing = f"(list of length {len(type_input)})" if big else str(type_input)
            return _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listing}",
                          {"input_name": name, "input_config": None if big else info, "received_value": value})
        return None

    def validate_prompt(self, prompt: Any) -> tuple[list[str], dict[str, Any]]:
        """The output node ids to execute and the node_errors of the outputs dropped (ComfyUI runs what
        validates and reports the rest), or raises PromptInvalid with ComfyUI's error shapes."""
        if not isinstance(prompt, dict):
            raise PromptInvalid(_error("invalid_prompt", "Invalid prompt: prompt must be an object",
                                       str(type(prompt).__name__)), {})
        for node_id, node in prompt.items():
            if not isinstance(node, dict) or "class_type" not in node:
                raise PromptInvalid(_error("invalid_prompt",
                                           "Cannot execute because a node is missing the class_type property.",
                                           f"Node ID '#{node_id}'"), {})
            if self.node_type(node["class_type"]) is None:
                class_type = node["class_type"]
                provider = self.custom_nodes.providers.get(class_type) if isinstance(class_type, str) else None
                raise PromptInvalid(_error(
                    "missing_node_type", f"Node '{class_type}' not found. The custom node may not be installed. "
                    + (not_runnable_custom(class_type, provider, self.custom_nodes.refused.get(class_type))
                       if provider is not None else not_emulated(class_type)),
                    f"Node ID '#{node_id}'", {"node_id": node_id, "class_type": class_type}), {})
        outputs = [nid for nid, node in prompt.items() if self._known(node).output_node]
        if not outputs:
            raise PromptInvalid(_error("prompt_no_outputs", "Prompt has no outputs", ""), {})
        validated: dict[str, Any] = {}
        good: list[str] = []
        failures: list[tuple[str, list]] = []
        node_errors: dict[str, Any] = {}
        for output in outputs:
            try:
                ok, reasons = self._validate_node(prompt, output, validated)
            except Exception as exc:  # noqa: BLE001 - ComfyUI reports it as this output's validation error
                ok, reasons = False, [_error("exception_during_validation", "Exception when validating node",
                                             str(exc), {"exception_type": _type_name(exc),
                                                        "traceback": traceback.format_tb(exc.__traceback__)})]
                validated[output] = (ok, reasons)
            if ok:
                good.append(output)
                continue
            failures.append((output, reasons))
            for node_id, (node_ok, node_reasons) in validated.items():
                if not node_ok and node_reasons:
                    entry = node_errors.setdefault(node_id, {"errors": node_reasons, "dependent_outputs": [],
                                                             "class_type": prompt[node_id]["class_type"]})
                    entry["dependent_outputs"].append(output)
        if not good:
            lines = [f"{e['message']}: {e['details']}" for _, reasons in failures for e in reasons]
            raise PromptInvalid(_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                       "\n".join(lines)), node_errors)
        return good, node_errors

    # -- queue ---------------------------------------------------------------------------------------
    def submit(self, prompt: Any, extra_data: dict[str, Any] | None = None, prompt_id: str | None = None,
               number: float | None = None, front: bool = False) -> tuple[str, float, dict[str, Any]]:
        """Queues a prompt; returns its id, its number and the node_errors of outputs that will not run.
        `extra_data` is kept with it (history and queue entries, index 3); its client_id hears the /ws events.
        Without a `number`, the prompt takes the next one (negated with `front`: it runs before those queued)."""
        if number is None:
            with self._lock:  # ComfyUI numbers every prompt posted, one that fails validation too
                number = -self._state.number if front else self._state.number
                self._state.number += 1
        prompt = copy.deepcopy(prompt)
        outputs, node_errors = self.validate_prompt(prompt)
        with self._lock:
            task = _Task(number, prompt_id if prompt_id is not None else str(uuid.uuid4()), prompt,
                         copy.deepcopy(extra_data or {}), outputs)
            self._state.queue.append(task)
            self._queue_updated()
            self._lock.notify_all()
        return task.prompt_id, number, node_errors

    def queue_snapshot(self) -> tuple[list[list[Any]], list[list[Any]]]:
        with self._lock:
            running = [self._state.running.as_list()] if self._state.running else []
            return running, [t.as_list() for t in self._state.queue]

    def remaining(self) -> int:
        with self._lock:
            return len(self._state.queue) + (1 if self._state.running else 0)

    def delete_queued(self, prompt_ids: list[str]) -> None:
        with self._lock:
            self._state.queue = [t for t in self._state.queue if t.prompt_id not in prompt_ids]
            self._queue_updated()

    def clear_queue(self) -> None:
        with self._lock:
            self._state.queue = []
            self._queue_updated()

    def interrupt(self, prompt_id: str | None = None) -> None:
        """ComfyUI's POST /interrupt: with a prompt id, only when that prompt is the one running."""
        with self._lock:
            running = self._state.running
            if prompt_id is None or (running is not None and running.prompt_id == prompt_id):
                self._interrupt.set()

    def history(self, prompt_id: str | None = None, max_items: int | None = None) -> dict[str, Any]:
        with self._lock:
            if prompt_id is not None:
                entry = self._state.history.get(prompt_id)
                return {prompt_id: copy.deepcopy(entry)} if entry else {}
            items = list(self._state.history.items())
            if max_items is not None:  # ComfyUI: the newest max_items (offset = len - max_items)
                items = items[max(0, len(items) - max_items):]
            return copy.deepcopy(dict(items))

    def clear_history(self, prompt_ids: list[str] | None = None) -> None:
        with self._lock:
            if prompt_ids is None:
                self._state.history.clear()
            for pid in prompt_ids or []:
                self._state.history.pop(pid, None)

    # -- /ws clients ---------------------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped

    def subscribe(self, sid: str) -> queue.SimpleQueue[dict[str, Any]]:
        """A /ws client's inbox (replacing an older socket of the same clientId, as ComfyUI does); it first
        hears the queue status and its sid."""
        inbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        with self._lock:
            self._sockets[sid] = inbox
            inbox.put({"type": "status", "data": {"status": self._queue_info(), "sid": sid}})
        return inbox

    def unsubscribe(self, sid: str, inbox: queue.SimpleQueue[dict[str, Any]]) -> None:
        with self._lock:
            if self._sockets.get(sid) is inbox:
                del self._sockets[sid]

    def _send(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        """ComfyUI's send_sync: to the socket of `sid` (nobody when it is not connected), or to all."""
        with self._lock:
            inboxes = list(self._sockets.values()) if sid is None else [self._sockets.get(sid)]
        for inbox in inboxes:
            if inbox is not None:
                inbox.put({"type": event, "data": data})

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.remaining()}}

    def _queue_updated(self) -> None:
        self._send("status", {"status": self._queue_info()})

    def _message(self, messages: list[list[Any]], client: str | None, event: str, data: dict[str, Any],
                 broadcast: bool = False) -> None:
        """ComfyUI's PromptExecutor.add_message: kept for the history entry, and sent to the prompt's client
        (to every socket when the prompt named none, only if `broadcast`)."""
        data = {**data, "timestamp": int(time.time() * 1000)}
        messages.append([event, data])
        if client is not None or broadcast:
            self._send(event, data, client)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        self._interrupt.set()
        self._thread.join(timeout=5)

    # -- execution -----------------------------------------------------------------------------------
    def _execute_loop(self) -> None:
        while True:
            with self._lock:
                while not self._state.queue and not self._stopped:
                    self._lock.wait()
                if self._stopped:
                    return
                self._state.queue.sort(key=lambda t: (t.number, t.prompt_id))  # ComfyUI's heap order
                task = self._state.queue.pop(0)
                self._state.running = task
                self._interrupt.clear()  # under the lock: an interrupt naming this task from now on counts
                self._queue_updated()
            client = task.extra_data.get("client_id")
            messages: list[list[Any]] = []
            self._message(messages, client, "execution_start", {"prompt_id": task.prompt_id})
            self._message(messages, client, "execution_cached", {"nodes": [], "prompt_id": task.prompt_id})
            interrupted = self._rendering()
            outputs: dict[str, Any] = {}
            if interrupted:
                time.sleep(self.interrupt_lag_s)  # still running (in /queue) until its next step
                status = "error"
                self._message(messages, client, "execution_interrupted", {
                    "prompt_id": task.prompt_id, "node_id": task.outputs[0], "node_type": "SaveImage",
                    "executed": []}, broadcast=True)
            else:
                status = "success"
                for node_id in task.outputs:
                    try:
                        self.load_models(task.prompt, node_id)  # ComfyUI runs an output's loaders before it
                        self._executing(client, task.prompt_id, node_id)
                        outputs[node_id] = {"images": self._save_images(task.prompt, node_id)}
                    except _LoaderFailed as failed:
                        status = "error"
                        self._message(messages, client, "execution_error",
                                      _execution_error(task, failed.node_id, list(outputs), failed.error))
                        break
                    except Exception as exc:  # noqa: BLE001 - ComfyUI reports a failing node and takes the next prompt
                        status = "error"
                        self._message(messages, client, "execution_error",
                                      _execution_error(task, node_id, list(outputs), exc))
                        break
                    if client is not None:
                        self._send("executed", {"node": node_id, "display_node": node_id,
                                                "output": outputs[node_id], "prompt_id": task.prompt_id}, client)
                if status == "success":
                    self._message(messages, client, "execution_success", {"prompt_id": task.prompt_id})
            with self._lock:
                self._state.running = None
                if len(self._state.history) > MAX_HISTORY:
                    self._state.history.pop(next(iter(self._state.history)))
                self._state.history[task.prompt_id] = {
                    "prompt": task.as_list(), "outputs": outputs,
                    "status": {"status_str": status, "completed": status == "success", "messages": messages},
                    "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                             for nid in outputs}}
                self._queue_updated()
                self._lock.notify_all()
            # ComfyUI's "this prompt is done" signal, sent once its history entry exists.
            self._executing(client, task.prompt_id, None)

    def _rendering(self) -> bool:
        """Plays the render's duration (the delay, then the gate); True when /interrupt (or stop) ended it."""
        if self.render_delay_s > 0 and self._interrupt.wait(self.render_delay_s):
            return True
        if self.hold_dir is not None:
            release = self.hold_dir / "release"
            while not release.exists():
                if self._interrupt.wait(HOLD_POLL_S):
                    return True
        return False

    def _executing(self, client: str | None, prompt_id: str, node_id: str | None) -> None:
        if client is not None:
            self._send("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                       if node_id is not None else {"node": None, "prompt_id": prompt_id}, client)

    def _upstream(self, prompt: dict[str, Any], node_id: str, seen: dict[str, Any]) -> None:
        if node_id in seen:
            return
        node = prompt[node_id]
        values = {k: v for k, v in sorted(node["inputs"].items()) if not isinstance(v, list)}
        if node["class_type"] == "LoadImage":  # the file's bytes, not its name: another upload, another render
            values["image"] = self._loaded_image(node_id, values.get("image"))[2]
        seen[node_id] = {"class_type": node["class_type"], "values": values}
        for value in node["inputs"].values():
            if isinstance(value, list):
                self._upstream(prompt, str(value[0]), seen)

    def _latent(self, prompt: dict[str, Any], node_id: str, handed_on: str | None = None,
                latent: bool = False) -> dict[str, Any]:
        """The Empty*LatentImage (or the LoadImage: its image's size, `exact` unless a `latent` came between) feeding
        this node, following the first linked input of the type of the output the render came through (`handed_on`:
        a stand-in's IMAGE output hands on its first IMAGE input, whatever comes before it), else the first its node type declares IMAGE or LATENT (SaveImage's `images`, VAEDecode's
        `samples`, KSampler's `latent_image`; a node type added to NODE_TYPES, such as WAS's `Image Blur` and its
        `image`, by its own declaration, whatever the input's name)."""
        node = prompt[node_id]
        if node["class_type"] in ("EmptyLatentImage", "EmptySD3LatentImage"):
            return node["inputs"]
        if node["class_type"] == "LoadImage":  # img2img: the loaded image sizes the render
            width, height, _, batched = self._loaded_image(node_id, node["inputs"].get("image"))
            # through a latent (VAEEncode), cropped to a multiple of 8 as ComfyUI's VAE crops it; else as loaded
            return {"width": width, "height": height, "batch_size": batched, "exact": not latent}
        node_type = self.node_type(node["class_type"])
        linked = [(spec[0], node["inputs"].get(name)) for name, spec in node_type.required.items()
                  if spec and spec[0] in LATENT_PATH_TYPES and isinstance(node["inputs"].get(name), list)
                  ] if node_type is not None else []
        chosen = next((found for found in linked if found[0] == handed_on), linked[0] if linked else None)
        if chosen is not None:
            kind, (source_id, slot) = chosen[0], chosen[1][:2]
            source = self.node_type(prompt[str(source_id)]["class_type"])
            output = source.outputs[slot] if source is not None and 0 <= slot < len(source.outputs) else kind
            return self._latent(prompt, str(source_id), output, latent or output == "LATENT")
        raise PromptInvalid(_error(
            "exception_during_validation",
            f"no latent image upstream: the local target's ComfyUI emulator sizes an image by the EmptyLatentImage its "
            f"IMAGE or LATENT inputs lead to, and node {node_id} ({node['class_type']}) has no such input linked "
            "(its inputs as NODE_TYPES in goldgate/local/comfyui/backend.py, or its custom_nodes.yaml stand-in, "
            "declares them)", node_id), {})

    def render(self, prompt: dict[str, Any], save_node: str) -> list[bytes]:
        """Deterministic PNGs for one SaveImage node: same upstream values -> same bytes."""
        upstream: dict[str, Any] = {}
        self._upstream(prompt, save_node, upstream)
        upstream[save_node]["values"].pop("filename_prefix", None)  # naming does not change pixels
        fingerprint = json.dumps(sorted(upstream.values(), key=lambda v: json.dumps(v, sort_keys=True)),
                                 sort_keys=True)
        latent = self._latent(prompt, save_node)
        # A latent pixel covers 8x8 image pixels: sizes round down to a multiple of 8, as in ComfyUI.
        width, height = max(8, int(latent["width"]) // 8 * 8), max(8, int(latent["height"]) // 8 * 8)
        if latent.get("exact"):  # an image loaded and saved without a latent between
            width, height = int(latent["width"]), int(latent["height"])
        images = []
        for index in range(int(latent.get("batch_size", 1))):
            seed = int.from_bytes(hashlib.sha256(f"{fingerprint}#{index}".encode()).digest()[:8], "big")
            rng = random.Random(seed)
            tile = Image.new("RGB", (8, 8))
            tile.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64)])
            buf = io.BytesIO()
            tile.resize((width, height), Image.Resampling.NEAREST).save(buf, format="PNG", compress_level=1)
            images.append(buf.getvalue())
        return images

    def _save_images(self, prompt: dict[str, Any], node_id: str) -> list[dict[str, str]]:
        prefix = str(prompt[node_id]["inputs"].get("filename_prefix") or "ComfyUI")
        # ComfyUI's folder_paths.get_save_image_path: the normalised prefix's directory is the subfolder, its last
        # part the name as given; a subfolder out of the output directory fails the node (no file is written).
        subfolder, base = os.path.split(os.path.normpath(prefix))
        root = os.path.abspath(self.output_dir)
        folder = os.path.abspath(os.path.join(root, subfolder))
        if os.path.commonpath((root, folder)) != root:  # ComfyUI raises a bare Exception: exception_type "Exception"
            raise Exception(  # noqa: TRY002
                "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: "
                f"{folder}\n         output_dir: {root}\n         commonpath: {os.path.commonpath((root, folder))}")
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        saved = []
        for data in self.render(prompt, node_id):
            with self._lock:  # ComfyUI's counter: one past the highest already in the folder, so nothing is overwritten
                counter = 1 + max((int(m.group(1)) for m in (re.match(rf"{re.escape(base)}_(\d+)_", p.name)
                                                              for p in target.iterdir()) if m), default=0)
                filename = f"{base}_{counter:05}_.png"
                (target / filename).write_bytes(data)
            saved.append({"filename": filename, "subfolder": subfolder, "type": "output"})
        return saved

    def upload(self, data: bytes, filename: str, subfolder: str, kind: str, overwrite: bool) -> dict[str, str] | None:
        """ComfyUI's POST /upload/image (server.py image_upload): the stored name, subfolder and type, or None
        for its 400 (no file name, or a path out of the directory). Without `overwrite`, a name taken by other
        bytes becomes 'name (1).ext'; the same bytes again are not stored twice."""
        if not filename:
            return None
        upload_dir = os.path.abspath(self.dirs[kind])
        folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        path = os.path.abspath(os.path.join(folder, filename))
        if os.path.commonpath((upload_dir, path)) != upload_dir:
            return None
        os.makedirs(os.path.dirname(path), exist_ok=True)
        stem, ext = os.path.splitext(filename)
        number = 1
        with self._lock:
            while not overwrite and os.path.exists(path):
                if Path(path).read_bytes() == data:
                    return {"name": filename, "subfolder": subfolder, "type": kind}
                filename = f"{stem} ({number}){ext}"
                path = os.path.join(folder, filename)
                number += 1
            Path(path).write_bytes(data)
        return {"name": filename, "subfolder": subfolder, "type": kind}

    def annotated(self, filename: str, kind: str) -> tuple[str, str]:
        """ComfyUI's folder_paths.annotated_filepath, as /view reads a file name: one ending in "[output]", "[input]"
        or "[temp]" (how the front end names an output, or an input it uploaded: "x.png [output]") is the name before
        it, in that directory whatever `kind` says; (filename, kind) as they are otherwise."""
        for annotation in self.dirs:
            if filename.endswith(f"[{annotation}]"):
                return filename[:-len(annotation) - 3], annotation  # ComfyUI cuts the space before it too
        return filename, kind

    def view(self, filename: str, subfolder: str = "", kind: str = "output") -> tuple[int, bytes | None]:
        """(HTTP status, bytes) as ComfyUI's /view answers: 400 for an empty, absolute or '..' file name or an
        unknown type, 403 for a subfolder outside the directory, 404 for a file that is not there."""
        if not filename or filename.startswith("/") or ".." in filename or kind not in self.dirs:
            return 400, None
        root = self.dirs[kind].resolve()
        try:
            directory = (root / subfolder).resolve()
        except (OSError, ValueError):  # a NUL byte, a symlink loop: no such file
            return 404, None
        if directory != root and root not in directory.parents:
            return 403, None
        path = directory / Path(filename).name
        if not path.is_file():
            return 404, None
        return 200, path.read_bytes()
