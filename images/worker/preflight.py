"""Preflight ("first aid"): are the manifest's models where ComfyUI's loaders look, at the right size?

Run at worker start (start script, local worker process) and on demand (`goldgate doctor` calls
`run_preflight`; `python -m <pkg>.preflight` from a shell). It never raises for a bad tree: every
finding goes into the report, which renders for a human and as JSON.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .config import ConfigError, load_config
from .first_aid import NO_CHECKPOINTS, broken_links, subfolder_hint
from .logs import WorkerLog, error_field
from .manifest import (
    FOLDERS,
    MODEL_EXTENSIONS,
    ManifestError,
    ModelEntry,
    check_consistency,
    load_manifest,
    model_references,
)
from .workflows import WorkflowError, load_workflows

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MANIFEST = PACKAGE_DIR / "models.yaml"
DEFAULT_WORKFLOWS = PACKAGE_DIR / "workflows"
_ALL_DIRS = sorted({d for dirs in FOLDERS.values() for d in dirs})
_NO_CHECKPOINTS_LINE = f"{NO_CHECKPOINTS}: the checkpoint loader folder is empty under every model root"
# What a clone without `git lfs pull` leaves in a model's place: a text file of about 130 bytes.
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"
_SAFETENSORS = frozenset({".safetensors", ".sft"})
MAX_SAFETENSORS_HEADER = 100_000_000  # the format's own bound on its JSON header
# What the local target's image store bakes in each model's place: a sparse file of the manifest's size, all zeros.
STAND_IN = "the local target's zero-filled stand-in (its image store bakes every model so)"


@dataclass(frozen=True)
class ModelCheck:
    file: str
    kind: str
    directory: str
    status: str  # ok | missing | wrong_size | not_a_model | sha256_mismatch | unreadable
    path: str | None
    expected_size: int | None
    actual_size: int | None
    message: str


@dataclass(frozen=True)
class LoaderDirCheck:
    folder: str
    directories: tuple[str, ...]
    files: int
    ok: bool


@dataclass(frozen=True)
class PreflightReport:
    ok: bool
    model_roots: tuple[str, ...]
    roots_present: tuple[str, ...]
    workflows: tuple[str, ...]
    models: tuple[ModelCheck, ...]
    loader_dirs: tuple[LoaderDirCheck, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    sha256_verified: bool

    def no_checkpoints(self) -> bool:
        """The checkpoint loader would list nothing (a workflow uses it and its folder is empty)."""
        return any(d.folder == "checkpoints" and not d.ok for d in self.loader_dirs)

    def loaded_models(self) -> list[str]:
        return [m.path for m in self.models if m.status == "ok" and m.path]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = [asdict(m) for m in self.models]
        data["loader_dirs"] = [asdict(d) for d in self.loader_dirs]
        return data

    def to_dict(self) -> dict[str, Any]:
        """Same as to_json (the CLI's name for it)."""
        return self.to_json()

    def render(self) -> str:
        """Same as render_text (the CLI's name for it)."""
        return self.render_text()

    def render_text(self) -> str:
        lines = [f"worker preflight: {'OK' if self.ok else 'FAILED'}",
                 f"model roots: {', '.join(self.model_roots)} (present: {', '.join(self.roots_present) or 'none'})",
                 f"workflows: {', '.join(self.workflows) or 'none loaded'}"]
        for m in self.models:
            lines.append(f"  [{'ok' if m.status == 'ok' else m.status.upper()}] {m.directory}/{m.file}: {m.message}")
        for d in self.loader_dirs:
            lines.append(f"  [{'ok' if d.ok else 'EMPTY'}] loader folder {d.folder} "
                         f"({' or '.join(d.directories)}): {d.files} model file(s)")
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"warning: {w}" for w in self.warnings]
        if self.no_checkpoints():
            lines.append(_NO_CHECKPOINTS_LINE)
        if not self.ok:
            lines.append("if this is a serverless image, rebuild it with the models baked in (models.yaml); "
                         f"check {' and '.join(self.model_roots) or 'its model roots'}; see docs/RUNBOOK.md")
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _all_zeros(path: Path) -> bool:
    """The file holds only zero bytes: no data at all in a sparse file (SEEK_DATA finds none, read nothing), else
    read until a byte that is not zero (at once for a real model). Raises OSError."""
    with path.open("rb") as f:
        try:
            os.lseek(f.fileno(), 0, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data past offset 0: one hole, zeros all through
                return True
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
        while chunk := f.read(8 << 20):
            if chunk.count(0) != len(chunk):
                return False
    return True


def _in_local_snapshot(root: Path) -> bool:
    """`root` is the models/ of a local target's worker snapshot (goldgate/local/image_store.py: <images
    dir>/<64 hex digest>/ holding worker/ and models/), whose every model is a zero-filled stand-in."""
    parent = root.parent
    return (root.name == "models" and len(parent.name) == 64 and all(c in "0123456789abcdef" for c in parent.name)
            and _is_dir(parent / "worker"))


def _safetensors_problem(path: Path, f: BinaryIO, head: bytes, size: int) -> str | None:
    """A .safetensors file starts with its JSON header's length (8 bytes, little-endian), then the header, which
    places every tensor: a file shorter than that describes is cut short. Zero-filled stand-ins (the local
    target's sparse models) and files under 8 bytes have no header to judge."""
    length = int.from_bytes(head[:8], "little") if size >= 8 else 0
    if length == 0:
        return None
    if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
        text = head[:24].decode("latin-1")
        seen = (f" (it starts {text!r}: a web page or an error saved in the model's place?)"
                if text.isascii() and text.strip() else "")
        return f"{path} is not a safetensors file{seen}: download it again from its source_url"
    f.seek(8)
    try:
        header = json.loads(f.read(length))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return f"{path} is not a safetensors file (its header is not one): download it again from its source_url"
    if 8 + length + end > size:
        return (f"{path} is cut short: its safetensors header places {8 + length + end} bytes, the file has {size} "
                f"(an interrupted download or copy): download it again from its source_url")
    return None


def _content_problem(path: Path, size: int) -> str | None:
    """What makes the file no model a loader can read, judged from its first bytes (cheap at every start).
    ComfyUI lists such a file, so the job that loads it fails, not the prompt's validation. Raises OSError."""
    with path.open("rb") as f:
        head = f.read(64)
        if head.startswith(_LFS_POINTER):
            return (f"{path} is a Git LFS pointer ({size} bytes), not the model: it was cloned or copied without "
                    f"`git lfs pull`; bake the file itself from its source_url")
        if path.suffix.lower() in _SAFETENSORS:
            return _safetensors_problem(path, f, head, size)
    return None


def _check_model(entry: ModelEntry, roots: tuple[Path, ...], verify_sha256: bool) -> ModelCheck:
    def result(status: str, path: Path | None, size: int | None, message: str) -> ModelCheck:
        return ModelCheck(entry.file, entry.kind, entry.directory, status, str(path) if path else None,
                          entry.size, size, message)

    for root in roots:
        path = root / entry.directory / entry.file
        try:
            if not path.is_file():
                continue
            size = path.stat().st_size
        except OSError as exc:
            return result("unreadable", path, None, f"cannot stat {path}: {exc.strerror}")
        try:
            damaged = _content_problem(path, size)
        except OSError as exc:
            return result("unreadable", path, size, f"cannot read {path} as uid {os.geteuid()}: {exc.strerror}; "
                          f"ComfyUI lists it, and the job that loads it fails: the worker's user (uid 10001 in "
                          f"the image) must read every model: bake models mode 644")
        if damaged is not None:
            return result("not_a_model", path, size, damaged)
        if entry.size is not None and size != entry.size:
            return result("wrong_size", path, size, f"{path} is {size} bytes, models.yaml says {entry.size} "
                          f"(truncated download or a different file)")
        if entry.size is None and size == 0:
            return result("wrong_size", path, size, f"{path} is empty")
        if verify_sha256 and entry.sha256 is not None:
            try:
                zeros = size > 0 and _all_zeros(path)
                actual = None if zeros else _sha256(path)
            except OSError as exc:
                return result("unreadable", path, size, f"cannot read {path}: {exc.strerror}")
            if zeros and _in_local_snapshot(root):
                return result("ok", path, size, f"{path}, {size} bytes: {STAND_IN}; sha256 not checked: it "
                              "is no model")
            if zeros:
                return result("sha256_mismatch", path, size, f"{path} is {size} zero bytes, not the model (a "
                              "placeholder or a download that never wrote): bake the file itself from its source_url")
            if actual != entry.sha256:
                return result("sha256_mismatch", path, size, f"{path} sha256 {str(actual)[:16]}... differs from "
                              f"models.yaml {entry.sha256[:16]}... (a different file with the same name)")
        note = "" if entry.pinned else " (size/sha256 not pinned in models.yaml)"
        return result("ok", path, size, f"{path}, {size} bytes{note}")
    searched = ", ".join(str(r / entry.directory) for r in roots)
    elsewhere = [str(r / d / entry.file) for r in roots for d in _ALL_DIRS
                 if d != entry.directory and _is_file(r / d / entry.file)]
    hint = f"; found in another directory: {', '.join(elsewhere)}" if elsewhere else ""
    dangling = broken_links([r / entry.directory / entry.file for r in roots])
    if dangling:
        hint += (f"; {', '.join(dangling)} is a broken symbolic link (it points to nothing): link it to the model "
                 "file, or bake the file itself there")
    nested = subfolder_hint(entry.file, [str(r / entry.directory) for r in roots])
    hint += f"; {nested}" if nested else ""
    return result("missing", None, None, f"not found (searched {searched}){hint}")


def _is_file(path: Path) -> bool:
    """A file there, False for a path the worker's user cannot look up (which pathlib raises for)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _count_files(roots: tuple[Path, ...], directories: tuple[str, ...]) -> tuple[int, list[str]]:
    """The model files under the loader's directories, and the directories the worker's user cannot look into
    (a directory readable but not searchable, as `COPY --chmod=644` leaves directories): a model there cannot be
    opened, and pathlib raises for it, which must not end the preflight."""
    count, blocked = 0, []
    for root in roots:
        for directory in directories:
            base = root / directory
            try:
                if not base.is_dir():
                    continue
                for p in base.rglob("*"):  # MODEL_EXTENSIONS: what a loader lists (not put_checkpoints_here)
                    if p.name.startswith(".") or p.suffix.lower() not in MODEL_EXTENSIONS:
                        continue
                    try:
                        count += p.is_file()
                    except OSError:
                        if str(p.parent) not in blocked:
                            blocked.append(str(p.parent))
            except OSError:
                blocked.append(str(base))
    return count, blocked


def run_preflight(manifest_path: Path = DEFAULT_MANIFEST, workflows_dir: Path = DEFAULT_WORKFLOWS,
                  model_roots: Sequence[str | Path] = ("/comfyui/models", "/workspace/ComfyUI/models"),
                  verify_sha256: bool = False) -> PreflightReport:
    """Checks the model tree against models.yaml and the workflows; never raises for a bad tree."""
    roots = tuple(Path(r) for r in model_roots)
    problems: list[str] = []
    warnings: list[str] = []
    try:
        manifest = load_manifest(Path(manifest_path))
    except ManifestError as exc:
        manifest = None
        problems.append(str(exc))
    try:
        workflows = load_workflows(Path(workflows_dir))
    except WorkflowError as exc:
        workflows = {}
        problems.append(str(exc))
    checks: list[ModelCheck] = []
    loader_dirs: list[LoaderDirCheck] = []
    if manifest is not None:
        checks = [_check_model(m, roots, verify_sha256) for m in manifest.models]
        problems += [f"{c.directory}/{c.file}: {c.message}" for c in checks if c.status != "ok"]
        if workflows:
            consistency = check_consistency(manifest, workflows)
            problems += list(consistency.errors)
            warnings += list(consistency.warnings)
            warnings += [f"{m} is in models.yaml but no workflow uses it" for m in consistency.unused_models]
    stand_ins = [c for c in checks if c.status == "ok" and STAND_IN in c.message]
    if stand_ins:
        warnings.append(f"{len(stand_ins)} model file(s) are zero-filled stand-ins, as the local target's image store "
                        "bakes every model: a stand-in's sha256 never matches, so it was not checked (a file there "
                        "with other bytes is still hashed); a cloud image's models are checked inside it "
                        "(`python -m goldgate_worker.preflight --verify-sha256`)")
    folders = sorted({ref.folder for w in workflows.values() for ref in model_references(w)})
    for folder in folders:
        count, blocked = _count_files(roots, FOLDERS[folder])
        loader_dirs.append(LoaderDirCheck(folder, FOLDERS[folder], count, count > 0))
        if blocked:
            problems.append(f"loader folder {folder}: {', '.join(blocked)} cannot be searched by the worker's user "
                            f"(uid {os.geteuid()}), which ComfyUI runs as: its loader cannot open the models there; "
                            f"make the directories 755 and the models 644")
        elif count == 0:
            problems.append(f"loader folder {folder} is empty under every root "
                            f"({', '.join(str(r / d) for r in roots for d in FOLDERS[folder])})")
    present = tuple(str(r) for r in roots if _is_dir(r))
    if not present:
        problems.insert(0, f"no model root exists ({', '.join(str(r) for r in roots)}): models were not baked "
                           f"into this image, or MODEL_ROOTS points elsewhere")
    return PreflightReport(ok=not problems, model_roots=tuple(str(r) for r in roots), roots_present=present,
                           workflows=tuple(w.version for w in workflows.values()), models=tuple(checks),
                           loader_dirs=tuple(loader_dirs), problems=tuple(problems), warnings=tuple(warnings),
                           sha256_verified=verify_sha256)


def log_report(report: PreflightReport, log: WorkerLog) -> None:
    """`models_loaded` with the list on success (operators look for it in the startup log)."""
    data = {"models": report.loaded_models(), "model_roots": list(report.model_roots),
            "workflows": list(report.workflows), "warnings": list(report.warnings)}
    if report.ok:
        log.info("models_loaded", message=f"{len(report.loaded_models())} model files present", data=data)
    else:
        problems = [*([_NO_CHECKPOINTS_LINE] if report.no_checkpoints() else []), *report.problems]
        log.error("preflight_failed", message="; ".join(problems)[:4000],
                  data={**data, "problems": list(report.problems)})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preflight", description="Check the worker's models and workflows.")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--workflows", type=Path, default=DEFAULT_WORKFLOWS)
    parser.add_argument("--model-roots", help="colon-separated roots (default: MODEL_ROOTS or the image's)")
    parser.add_argument("--verify-sha256", action="store_true", help="hash every file (slow on real models)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    # start.sh's way: RunPod's worker log is read as JSON lines, and the preflight_failed line names every problem the
    # report for a reader would.
    parser.add_argument("--log-only", action="store_true",
                        help="write only the schema-v1 log lines, not the report for a reader")
    args = parser.parse_args(argv)
    try:
        config = load_config()
    except ConfigError as exc:
        if args.log_only:
            WorkerLog(sys.stderr).error("worker_cannot_start", message=f"preflight: {exc}", error=error_field(exc))
        else:
            print(f"preflight: {exc}", file=sys.stderr)
        return 2
    roots = tuple(r for r in args.model_roots.split(":") if r) if args.model_roots else config.model_roots
    report = run_preflight(args.manifest, args.workflows, roots, args.verify_sha256)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        if not args.log_only:
            print(report.render_text(), file=sys.stderr)
        log_report(report, WorkerLog(secrets=config.secrets(), stack=config.stack,
                                     worker_image_tag=config.worker_image_tag,
                                     workflow_version=config.workflow_version))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
