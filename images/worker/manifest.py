"""The model manifest (models.yaml), ComfyUI's loader directories, and the workflow/manifest check.

A loader node reads its file from fixed directories under ComfyUI's models root; a model baked
anywhere else is invisible to it (the root cause behind most "No checkpoint models" reports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .workflows import Workflow, shown

KINDS = ("checkpoint", "diffusion_model", "text_encoder", "vae", "lora")

# ComfyUI's folder_paths: the directories each model folder name scans, in search order.
FOLDERS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints",),
    "diffusion_models": ("diffusion_models", "unet"),
    "text_encoders": ("text_encoders", "clip"),
    "vae": ("vae",),
    "loras": ("loras",),
}

# Loader node class -> {input name: ComfyUI folder it lists}.
LOADER_INPUTS: dict[str, dict[str, str]] = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "DualCLIPLoader": {"clip_name1": "text_encoders", "clip_name2": "text_encoders"},
    "VAELoader": {"vae_name": "vae"},
    "LoraLoader": {"lora_name": "loras"},
    "LoraLoaderModelOnly": {"lora_name": "loras"},
}

# ComfyUI's folder_paths.supported_pt_extensions: a loader lists only files with these endings.
MODEL_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})

KIND_FOLDER = {"checkpoint": "checkpoints", "diffusion_model": "diffusion_models",
               "text_encoder": "text_encoders", "vae": "vae", "lora": "loras"}

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")
MAX_MANIFEST_BYTES = 1_000_000


class ManifestError(ValueError):
    """models.yaml is malformed; the message names the entry and field."""


@dataclass(frozen=True)
class ModelEntry:
    file: str
    kind: str
    directory: str
    size: int | None
    sha256: str | None
    source_url: str

    @property
    def relative_path(self) -> str:
        return f"{self.directory}/{self.file}"

    @property
    def pinned(self) -> bool:
        return self.size is not None and self.sha256 is not None


@dataclass(frozen=True)
class Manifest:
    models: tuple[ModelEntry, ...]
    path: Path | None = None

    def find(self, file: str) -> list[ModelEntry]:
        return [m for m in self.models if m.file == file]


def _entry(raw: Any, where: str) -> ModelEntry:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a mapping")
    for key in ("file", "kind", "directory", "size", "sha256", "source_url"):
        if key not in raw:
            raise ManifestError(f"{where} lacks {key!r} (write null when unknown, with a comment saying why)")
    file, kind, directory = raw["file"], raw["kind"], raw["directory"]
    if not isinstance(file, str) or not _FILE.fullmatch(file):
        raise ManifestError(f"{where}.file must be a plain file name, got {shown(file)}")
    where = f"{where} ({file})"
    if kind not in KINDS:
        raise ManifestError(f"{where}.kind must be one of {KINDS}, got {shown(kind)}")
    allowed = FOLDERS[KIND_FOLDER[kind]]
    if directory not in allowed:
        raise ManifestError(f"{where}.directory {shown(directory)} is not read by a {kind} loader "
                            f"(ComfyUI reads {', '.join(allowed)})")
    size = raw["size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ManifestError(f"{where}.size must be a positive number of bytes or null")
    sha = raw["sha256"]
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise ManifestError(f"{where}.sha256 must be 64 lowercase hex characters or null")
    url = raw["source_url"]
    if not isinstance(url, str) or not url.startswith("https://"):
        raise ManifestError(f"{where}.source_url must be an https URL")
    return ModelEntry(file=file, kind=kind, directory=directory, size=size, sha256=sha, source_url=url)


def parse_manifest(raw: Any, source: str = "<manifest>", path: Path | None = None) -> Manifest:
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
        raise ManifestError(f"{source}: expected a mapping with a 'models' list")
    models = tuple(_entry(m, f"{source}: models[{i}]") for i, m in enumerate(raw["models"]))
    seen: set[str] = set()
    for m in models:
        if m.relative_path in seen:
            raise ManifestError(f"{source}: {m.relative_path} is listed twice")
        seen.add(m.relative_path)
    return Manifest(models=models, path=path)


def load_manifest(path: Path) -> Manifest:
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: not valid YAML ({exc})") from None
    except (ValueError, RecursionError, KeyError, IndexError, TypeError, AttributeError) as exc:
        # PyYAML's own constructors fail this way: a number of over 4,300 digits, nesting deeper than Python's
        # stack, a value an explicit tag cannot take (`!!bool maybe`, `!!int ''`)
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0][:200]
        raise ManifestError(f"{path}: not valid YAML ({type(exc).__name__}: {reason})") from None
    return parse_manifest(raw, str(path), path)


@dataclass(frozen=True)
class ModelReference:
    """One loader input of one workflow naming a model file."""

    workflow: str
    node: str
    class_type: str
    input: str
    file: str
    folder: str

    @property
    def directories(self) -> tuple[str, ...]:
        return FOLDERS[self.folder]


def model_references(workflow: Workflow) -> list[ModelReference]:
    """Every model file the workflow can load: literal loader inputs plus a parameter's default and choices."""
    refs = []
    for node_id, node in workflow.graph.items():
        inputs = LOADER_INPUTS.get(node["class_type"], {})
        for input_name, folder in inputs.items():
            names: list[Any] = [node["inputs"].get(input_name)]
            for param in workflow.parameters:
                if param.node == node_id and param.input == input_name:
                    names = [param.default, *(param.choices or ())]
            for name in names:
                if isinstance(name, str):
                    refs.append(ModelReference(workflow.version, node_id, node["class_type"], input_name,
                                               name, folder))
    return refs


@dataclass(frozen=True)
class ConsistencyReport:
    errors: tuple[str, ...]
    unused_models: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_consistency(manifest: Manifest, workflows: dict[str, Workflow]) -> ConsistencyReport:
    """Every model a workflow names is in the manifest under a directory its loader reads."""
    errors: list[str] = []
    warnings: list[str] = []
    used: set[str] = set()
    for workflow in workflows.values():
        for node_id, node in workflow.graph.items():
            cls = node["class_type"]
            if cls not in LOADER_INPUTS and "Loader" in cls:
                errors.append(f"{workflow.version} node {node_id}: {cls} is a loader this worker does not know; "
                              f"add its inputs to LOADER_INPUTS in manifest.py so its models are checked")
        for ref in model_references(workflow):
            entries = manifest.find(ref.file)
            where = f"{ref.workflow} node {ref.node} ({ref.class_type}.{ref.input})"
            if not entries:
                errors.append(f"{where} names {ref.file!r}, which is not in models.yaml; add it under "
                              f"{ref.directories[0]}/ or fix the workflow")
                continue
            fitting = [e for e in entries if e.directory in ref.directories]
            if not fitting:
                dirs = ", ".join(e.relative_path for e in entries)
                hint = (" (a UNet/diffusion model used with the checkpoint loader? use UNETLoader + "
                        "CLIP + VAE loaders)" if ref.class_type == "CheckpointLoaderSimple" else "")
                errors.append(f"{where} names {ref.file!r}, which models.yaml bakes at {dirs}, but "
                              f"{ref.class_type} reads only {', '.join(d + '/' for d in ref.directories)}{hint}")
                continue
            used.update(e.relative_path for e in fitting)
    unused = tuple(m.relative_path for m in manifest.models if m.relative_path not in used)
    for m in manifest.models:
        if not m.pinned:
            warnings.append(f"{m.relative_path} has no confirmed size/sha256 in models.yaml: the build "
                            f"cannot verify it; confirm both from the source and pin them")
    return ConsistencyReport(errors=tuple(errors), unused_models=unused, warnings=tuple(warnings))
