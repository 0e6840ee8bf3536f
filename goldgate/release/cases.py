"""Golden cases: `scripts/golden-tests/cases/*.yaml`, one case per file, validated with errors that
name the file and field. A case says which workflow to run with which inputs and what the result
must look like; `smoke: true` puts it in the subset run on PROD after a promotion or rollback.

    id: sdxl-lighthouse            # defaults to the file name
    workflow: sdxl-txt2img
    smoke: true
    inputs: {prompt: "a lighthouse at dusk", seed: 42, width: 768, height: 768}
    expect:
      status: completed
      images: 1
      width: 768
      height: 768
      content_type: image/png
      min_bytes: 1000
      max_bytes: 20000000
      reference: sdxl-lighthouse.png   # in references/<target>/; defaults to <id>.png
      max_hash_distance: 8             # dHash bits (0..63: at 64 every render would pass)
      max_color_distance: 24           # mean colour difference of 8x8 thumbnails (0..254: at 255 every one would)
      max_latency_s: 600               # at most, and by default, the stack's golden_case_latency_s

An image parameter (`"type": "image"` in the workflow) takes a file of INPUTS_DIR (scripts/golden-tests/inputs/):
`inputs: {image: {file: landscape-768x512.png}}`. The runner uploads it (POST /api/inputs) before it creates the job
and sends the key the API answers; the report names the file and its sha256.

Each case has a reference image of its own: `--update-references` writes every case's first render to its
reference, so two cases naming one file would each overwrite the other's. Each target has its own references
(`references/local/`, the ComfyUI emulator's renders; `references/cloud/`, a real GPU's), as one render is tens of
dHash bits from the other's: see `references_for`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError
from goldgate.release.perceptual import COLOR_MAX, HASH_BITS, MAX_PIXELS
from goldgate.spec import read_yaml, show
from service.config import MAX_INPUT_BYTES, ServiceConfig
from service.inputs import MIN_SIDE, NotThatImage, read_header, sniffed_type

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO_ROOT / "scripts" / "golden-tests"
# The committed references: one directory per target below it (references/local, references/cloud).
REFERENCES_DIR = GOLDEN_DIR / "references"
# The images cases send (`{file: <name>}`): the checkout's, whichever --cases-dir a run reads (a subset copied
# elsewhere names the same files).
INPUTS_DIR = GOLDEN_DIR / "inputs"
_TARGET = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # fullmatch only: `$` would let a trailing newline through
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,123}\.png")
_CONTENT_TYPE = re.compile(r"image/[a-z0-9.+-]{1,127}")
_MAX_CASE_FILE = 256 * 1024
_CASE_KEYS = {"id", "workflow", "inputs", "expect", "smoke", "description"}
_CASE_LIKE_SUFFIXES = (".yaml", ".yml", ".json")
_EXPECT_KEYS = {"status", "images", "width", "height", "content_type", "min_bytes", "max_bytes",
                "reference", "max_hash_distance", "max_color_distance", "max_latency_s"}
# An input image is checked as POST /api/inputs checks it (service.inputs), against its byte limit and the default
# pixel limit of a stack's service (a stack may lower max_input_pixels; none raises it past the worker's reading).
MAX_INPUT_PIXELS: int = next(f.default for f in fields(ServiceConfig) if f.name == "max_input_pixels")
_INPUT_FILE_KEYS = {"file"}


class CaseError(GoldgateError):
    """A golden case file is missing, unreadable or invalid; the message names the file and field."""


@dataclass(frozen=True)
class Expectations:
    status: str = "completed"
    images: int = 1
    width: int | None = None
    height: int | None = None
    content_type: str = "image/png"
    min_bytes: int = 1
    max_bytes: int = 50_000_000
    reference: str | None = None
    max_hash_distance: int = 8
    # Re-encoding, GPU nondeterminism and slight blur stay under ~13; lost, swapped or crushed colours are ~50+.
    max_color_distance: int = 24
    max_latency_s: float | None = None


@dataclass(frozen=True)
class InputFile:
    """An image a case sends (`inputs: {<parameter>: {file: <name>}}`), as it was read when the case was loaded: the
    runner uploads the file and refuses it if its bytes are no longer these."""

    name: str          # as the case gives it, relative to the inputs directory
    path: Path
    content_type: str  # from its magic bytes: what the upload's Content-Type says
    bytes: int
    sha256: str


@dataclass(frozen=True)
class GoldenCase:
    id: str
    workflow: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    expect: Expectations = Expectations()
    smoke: bool = False
    source: str = ""
    input_files: Mapping[str, InputFile] = field(default_factory=dict)
    inputs_dir: Path = INPUTS_DIR  # where its image files were read from (`{file: <name>}`)

    @property
    def reference_name(self) -> str:
        return self.expect.reference or f"{self.id}.png"

    @property
    def sha256(self) -> str:
        """The digest of what this case tests (workflow, inputs, expectations), not of its file: a comment, a
        description or `smoke` (which runs it on PROD too) changes nothing a golden run proves, a loosened limit does."""
        definition: dict[str, Any] = {"id": self.id, "workflow": self.workflow, "inputs": dict(self.inputs),
                                      "expect": asdict(self.expect)}
        if self.input_files:  # another image under the same file name is another case
            definition["input_sha256"] = {name: f.sha256 for name, f in sorted(self.input_files.items())}
        return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def suite_digests(cases: Iterable[GoldenCase]) -> dict[str, str]:
    """Each case's id -> the digest of its definition: what a golden run records it ran, and the gate compares with
    the suite the promotion names."""
    return {case.id: case.sha256 for case in sorted(cases, key=lambda c: c.id)}


def shown_dir(path: Path) -> str:
    """A directory as a report or ledger entry names it: inside the checkout, its path from the checkout's root (as
    committed, and the same on every runner); elsewhere, its absolute path."""
    where = path.resolve()
    return where.relative_to(REPO_ROOT).as_posix() if where.is_relative_to(REPO_ROOT) else str(where)


def references_for(directory: Path, target: str) -> Path:
    """The references a run on `target` compares with (and `--update-references` writes): for the default,
    REFERENCES_DIR, the target's own directory below it (a GPU's render is tens of dHash bits from the ComfyUI
    emulator's, so one set would fail every run of the other target); any other directory (`--references-dir`) as
    given."""
    if directory.resolve() != REFERENCES_DIR.resolve():
        return directory
    if not _TARGET.fullmatch(target):
        raise GoldgateError(f"{target!r} is not a target (local or cloud): it names no references directory")
    return REFERENCES_DIR / target


def load_cases(cases_dir: Path = GOLDEN_DIR / "cases", smoke_only: bool = False, *,
               stack_latency_s: float | None = None, inputs_dir: Path = INPUTS_DIR) -> list[GoldenCase]:
    """Every case in `cases_dir` (sorted by id), or only the smoke subset; with `stack_latency_s` (the stack's
    golden_case_latency_s), a case asking for more time than that is refused too. Input images are read from
    `inputs_dir`."""
    if not cases_dir.is_dir():
        raise CaseError(f"golden cases directory {cases_dir} does not exist")
    # A case saved as x.yml or x.json would never run, and the suite (the gate's too) would not miss it.
    stray = sorted(p.name for p in cases_dir.iterdir()
                   if p.suffix.lower() in _CASE_LIKE_SUFFIXES and p.suffix != ".yaml")
    if stray:
        raise CaseError(f"{cases_dir / stray[0]}: golden cases are read from *.yaml files only, so this one would "
                        f"never run: rename it to {Path(stray[0]).stem}.yaml"
                        + (f" (and {len(stray) - 1} more: {', '.join(stray[1:4])})" if len(stray) > 1 else ""))
    files = sorted(cases_dir.glob("*.yaml"))
    # Opening a named pipe would wait for a writer for ever; a dangling link is named here, not as "missing".
    odd = next((p for p in files if not p.is_file()), None)
    if odd is not None:
        raise CaseError(f"{odd}: not a regular file; a golden case is a YAML file (move it out of {cases_dir})")
    cases = [load_case(p, inputs_dir) for p in files]
    if not cases:
        raise CaseError(f"no golden cases (*.yaml) in {cases_dir}")
    seen: dict[str, str] = {}
    for c in cases:
        if c.id in seen:
            raise CaseError(f"{c.source}: case id {c.id!r} is also used by {seen[c.id]}")
        seen[c.id] = c.source
    check_own_references(cases)
    if smoke_only:
        cases = [c for c in cases if c.smoke]
        if not cases:
            raise CaseError(f"no smoke cases in {cases_dir}: mark at least one case `smoke: true`")
    if stack_latency_s is not None:
        check_latency_limits(cases, stack_latency_s)
    return sorted(cases, key=lambda c: c.id)


def select_cases(cases: list[GoldenCase], ids: Iterable[str], where: str, smoke: bool = False) -> list[GoldenCase]:
    """The cases `ids` names (`golden --case`), in the suite's order; a CaseError, before any job is sent, for an id
    that names no case of `cases` (read from `where`; `smoke`: only its smoke cases were read)."""
    wanted = list(dict.fromkeys(ids))
    known = {case.id for case in cases}
    unknown = [case_id for case_id in wanted if case_id not in known]
    if unknown:
        kind = "smoke case" if smoke else "case"
        raise CaseError(f"--case {', '.join(show(u) for u in unknown[:5])}: no such {kind} in {where} (its "
                        f"{kind}s: {', '.join(sorted(known)[:20])}{', ...' if len(known) > 20 else ''}); nothing was "
                        "run")
    return [case for case in cases if case.id in wanted]


# How long `git status` may take to say which references are committed: a repository on a slow disk, never for ever.
GIT_STATUS_S = 30.0


class GitUnreadable(GoldgateError):
    """The reference images are in a git checkout, but git would not say what it holds of them: git refused the
    repository (another user owns it: "detected dubious ownership"), is not installed, or failed. The message names
    why and the way out; nothing is then known of commits, so "committed" must not be said."""


def uncommitted_references(directory: Path, names: Iterable[str]) -> dict[str, str] | None:
    """Which of the reference files `names` in `directory` git does not hold as committed: name -> how git sees it
    (untracked, modified); {} when HEAD holds every one as it is; None when `directory` is in no git checkout (an
    unpacked tarball: no `.git` above it, and git, where installed, finds no repository). A GitUnreadable when it
    is in one and git cannot say (git not installed, a repository it refuses as another user's, a git that fails):
    "nothing known" there is no pass, as CI's checkout may hold other files than this one.
    Read from git's objects alone (`ls-tree HEAD`, `hash-object --no-filters`), never by `git status`: a status
    runs what the repository's config names (core.fsmonitor, a .gitattributes clean filter), and --references-dir
    may be in any repository."""
    wanted = sorted(set(names))
    if not wanted or not directory.is_dir():
        return None if not wanted else {}
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    refused: list[str] = []

    def git(*args: str) -> bytes | None:
        try:
            proc = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, timeout=GIT_STATUS_S,
                                  check=False, stdin=subprocess.DEVNULL, env=env)
        except FileNotFoundError:
            refused.append("git is not installed (no `git` on PATH)")
            return None
        except subprocess.TimeoutExpired:
            refused.append(f"`git {args[0]}` did not answer within {GIT_STATUS_S:g} s")
            return None
        except (OSError, subprocess.SubprocessError) as exc:
            refused.append(f"git could not be run ({type(exc).__name__}: {str(exc)[:200]})")
            return None
        if proc.returncode != 0:
            refused.append(git_said(proc.stderr, proc.returncode))
            return None
        return proc.stdout

    if git("rev-parse", "--is-inside-work-tree") is None:
        checkout = _git_checkout_above(directory)
        if checkout is None and "GIT_DIR" not in os.environ and refused and (
                "not a git repository" in refused[0] or "not installed" in refused[0]):
            return None   # no checkout: no .git above it, and git (where installed) found no repository either
        raise GitUnreadable(_unreadable(directory, checkout, refused[0] if refused else "git failed"))
    present = [name for name in wanted if (directory / name).is_file()]
    listed = git("ls-tree", "-z", "HEAD", "--", *present) or b""   # none: no commit yet, so nothing is committed
    refused.clear()
    hashed = git("hash-object", "--no-filters", "--", *present) if present else b""
    if hashed is None:
        raise GitUnreadable(_unreadable(directory, _git_checkout_above(directory),
                                        refused[0] if refused else "git failed"))
    committed = {}
    for record in listed.split(b"\0"):
        head, _, path = record.partition(b"\t")
        if path:
            committed[path.decode("utf-8", "replace").rsplit("/", 1)[-1]] = head.split()[-1].decode("ascii", "replace")
    found: dict[str, str] = {}
    for name, blob in zip(present, hashed.decode("ascii", "replace").split(), strict=False):
        if name not in committed:
            found[name] = "untracked"
        elif committed[name] != blob:
            found[name] = "modified"
    return found


def _git_checkout_above(directory: Path) -> Path | None:
    """The nearest directory at or above `directory` holding a `.git` (a directory, or a worktree's file): where git
    would find a repository, whether or not git can be run."""
    for place in (directory.resolve(), *directory.resolve().parents):
        if os.path.lexists(place / ".git"):
            return place
    return None


def git_said(stderr: bytes, code: int) -> str:
    """git's own refusal on one line: its first `fatal:`/`error:` line, else its first line, else its exit code."""
    lines = [" ".join(line.split()) for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    return f"git said: {said[:300]}" if said else f"git exited {code}"


def git_way_out(why: str, repo: Path, directory: Path) -> str:
    """What to do when git would not read the repository at `repo` (`why`, as `git_said` words it), run in
    `directory`: git's own way out for a repository another user owns, else what to fix."""
    if "dubious ownership" in why:
        return (f"run goldgate as the user who owns {repo}, or, if you trust that repository, "
                f"`git config --global --add safe.directory {repo}` (git's own way out)")
    if "not installed" in why:
        return "install git (or put it on PATH)"
    return f"`git -C {directory} status` shows what git makes of it: fix that"


def _unreadable(directory: Path, checkout: Path | None, why: str) -> str:
    """Why git cannot say what the checkout holds of the references in `directory`, and the way out."""
    repo = checkout or directory
    return (f"cannot tell whether the reference images in {directory} are committed: they are in a git checkout "
            f"({repo}) and {why}; {git_way_out(why, repo, directory)}")


_GIT_STATES = {"??": "untracked", "!!": "untracked and ignored by .gitignore", " M": "modified",
               "M ": "modified (staged, not committed)", "MM": "modified", "A ": "added, not committed",
               "AM": "added, not committed", " T": "modified", " D": "deleted", "D ": "deleted"}


def check_own_references(cases: Iterable[GoldenCase]) -> None:
    """Refuse two cases naming one reference image. `--update-references` writes each case's render to its
    reference, so the last writer would win and the other case would be compared with a different render from
    then on; a case meant to look like another keeps a copy of its own. Names are compared case-blind, as a
    macOS or Windows checkout stores them."""
    owner: dict[str, GoldenCase] = {}
    for case in cases:
        first = owner.setdefault(case.reference_name.casefold(), case)
        if first is not case:
            raise CaseError(f"{case.source}: expect.reference {case.reference_name} is also the reference of case "
                            f"{first.id} ({first.source}); give each case its own reference image")


def check_latency_limits(cases: Iterable[GoldenCase], stack_latency_s: float, stack: str | None = None) -> None:
    """A case may tighten its stack's per-case latency limit (golden_case_latency_s), never loosen it: the
    stack's limit is what its golden report and checklist vouch for."""
    whose = f"stack {stack}'s" if stack else "the stack's"
    for case in cases:
        asked = case.expect.max_latency_s
        if asked is not None and asked > stack_latency_s:
            raise CaseError(f"{case.source}: expect.max_latency_s: {asked:g} s is more than {whose} "
                            f"golden_case_latency_s ({stack_latency_s:g} s), the most a case may take; lower it "
                            f"to at most {stack_latency_s:g} or raise the stack's limit")


def load_case(path: Path, inputs_dir: Path = INPUTS_DIR) -> GoldenCase:
    """The case in `path`; the input images it names are files of `inputs_dir`."""
    src = str(path)
    raw = read_yaml(path, "golden case file", _MAX_CASE_FILE, CaseError)
    if not isinstance(raw, Mapping):
        raise CaseError(f"{src}: expected a mapping with workflow, inputs and expect")
    unknown = set(raw) - _CASE_KEYS
    if unknown:
        # The usual cause is an indentation slip: `images: 1` under `expect:` lost its indent and became a field of
        # the case, or a parameter (`prompt:`) left `inputs:`.
        misplaced = unknown & _EXPECT_KEYS
        raise CaseError(f"{src}: unknown field(s) {_names(unknown)}; a case takes "
                        f"{', '.join(sorted(_CASE_KEYS))}"
                        + (f" ({_names(misplaced)} {'belongs' if len(misplaced) == 1 else 'belong'} under `expect:`: "
                           f"indent {'it' if len(misplaced) == 1 else 'them'})" if misplaced else
                           " (a workflow parameter goes under `inputs:`)"))
    case_id = raw.get("id", path.stem)
    if not isinstance(case_id, str) or not _ID.fullmatch(case_id):
        where = "id" if "id" in raw else "the file name gives the case id"
        raise CaseError(f"{src}: {where} {show(case_id)}: an id is 1 to 64 lowercase letters, digits, '.', '_' "
                        "or '-'" + ("" if "id" in raw else "; rename the file or set `id:`"))
    workflow = raw.get("workflow")
    if not isinstance(workflow, str) or not _ID.fullmatch(workflow):
        raise CaseError(f"{src}: workflow is required (a workflow id such as sdxl-txt2img)")
    # Left out (or empty, `inputs:`) means none; a list, a number or a string is a mistake, not "none".
    inputs = {} if raw.get("inputs") is None else raw["inputs"]
    if not isinstance(inputs, Mapping) or not all(isinstance(k, str) for k in inputs):
        raise CaseError(f"{src}: inputs must be a mapping of parameter name to value")
    files: dict[str, InputFile] = {}
    for name, value in inputs.items():
        if isinstance(value, Mapping):
            files[name] = input_file(value, f"{src}: inputs.{_names({name})}", inputs_dir)
            continue
        # What a workflow parameter takes (a string, an integer, a number, true/false); anything else, a list,
        # NaN or a YAML alias bomb, would only fail later, in the job request.
        if not isinstance(value, str | int | float) or (isinstance(value, float) and not math.isfinite(value)):
            raise CaseError(f"{src}: inputs.{_names({name})}: expected a string, a finite number, true/false or "
                            f"an image file ({{file: <name in inputs/>}}), got {show(value)}")
    smoke = raw.get("smoke", False)
    if not isinstance(smoke, bool):
        raise CaseError(f"{src}: smoke must be true or false")
    expect = _expectations({} if raw.get("expect") is None else raw["expect"], src)
    if not isinstance(raw.get("description", ""), str):
        raise CaseError(f"{src}: description must be text")
    return GoldenCase(id=case_id, workflow=workflow, inputs={k: dict(v) if isinstance(v, Mapping) else v
                                                             for k, v in inputs.items()},
                      smoke=smoke, source=src, expect=expect, input_files=files, inputs_dir=inputs_dir)


def input_file(value: Mapping[Any, Any], where: str, inputs_dir: Path) -> InputFile:
    """The image file `value` ({file: <name>}) names in `inputs_dir`, read and checked; a CaseError starting with
    `where` (the case file and field) for a path outside that directory, a missing file, or one POST /api/inputs
    would refuse (said before any job is sent): not a PNG, JPEG or WebP image of at most MAX_INPUT_BYTES and
    MAX_INPUT_PIXELS with each side at least MIN_SIDE, or one cut short, damaged or animated
    (service.inputs.read_header)."""
    unknown = set(value) - _INPUT_FILE_KEYS
    name = value.get("file")
    if unknown or not isinstance(name, str) or not name.strip():
        raise CaseError(f"{where}: an image is given as {{file: <name>}}, a file in {inputs_dir}"
                        + (f" (unknown field(s) {_names(unknown)})" if unknown else f", got {show(dict(value))}"))
    if "\x00" in name:  # no file system names one: resolve() would raise ValueError, not say which case
        raise CaseError(f"{where}: file {show(name)} holds a NUL character, which no file name can: name a file in "
                        f"{inputs_dir}")
    relative = Path(name)
    # Only a file of the inputs directory: a case must not upload (to the stack's bucket) whatever the runner's
    # user can read, e.g. `../../../.ssh/id_ed25519`.
    if relative.is_absolute() or ".." in relative.parts or "\\" in name:
        raise CaseError(f"{where}: file {show(name)} is outside {inputs_dir}: name a file in that directory "
                        "(a path relative to it, without `..`)")
    file_path = inputs_dir / relative
    try:
        inside = file_path.resolve().is_relative_to(inputs_dir.resolve())
    except (OSError, RuntimeError):   # a symbolic link loop
        inside = False
    if not inside:
        raise CaseError(f"{where}: file {show(name)} leads outside {inputs_dir} (a symbolic link): put the image "
                        "itself in that directory")
    if not file_path.is_file():
        what = "no such file" if not os.path.lexists(file_path) else "not a regular file"
        raise CaseError(f"{where}: {what} {file_path}: put the image there (a PNG, JPEG or WebP file)")
    try:
        with file_path.open("rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise CaseError(f"{where}: cannot read {file_path} ({exc.strerror or exc})") from None
    if len(data) > MAX_INPUT_BYTES:
        raise CaseError(f"{where}: {file_path} is larger than {MAX_INPUT_BYTES} bytes, the most POST /api/inputs "
                        "takes: make it smaller")
    content_type = sniffed_type(data)
    if content_type is None:
        raise CaseError(f"{where}: {file_path} is not a PNG, JPEG or WebP image (its first bytes are "
                        f"{data[:8].hex() or 'none: it is empty'}): an image parameter takes one of those")
    try:
        header = read_header(data, content_type)
    except NotThatImage as exc:  # cut short, damaged, animated: POST /api/inputs answers 400 invalid_image
        raise CaseError(f"{where}: {file_path} would be refused by POST /api/inputs: {exc}") from None
    if header.pixels > MAX_INPUT_PIXELS:
        raise CaseError(f"{where}: {file_path} is {header.width}x{header.height}"
                        + (f" ({header.pictures} pictures)" if header.pictures > 1 else "")
                        + f", {header.pixels} pixels, more than the {MAX_INPUT_PIXELS} POST /api/inputs takes "
                        "(max_input_pixels): make it smaller")
    if min(header.width, header.height) < MIN_SIDE:
        raise CaseError(f"{where}: {file_path} is {header.width}x{header.height}, under the {MIN_SIDE}-pixel minimum "
                        "of each side POST /api/inputs takes (ComfyUI's VAEEncode would crop it to nothing): make it "
                        "larger")
    return InputFile(name=relative.as_posix(), path=file_path, content_type=content_type, bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest())


def _names(keys: set[Any]) -> str:
    """Unknown keys on one short line: a plain name as it is, anything else quoted and shortened, ten at most."""
    ordered = sorted(keys, key=str)
    shown = [k if isinstance(k, str) and _ID.fullmatch(k) else show(k) for k in ordered[:10]]
    return ", ".join(shown) + (f" and {len(ordered) - 10} more" if len(ordered) > 10 else "")


def _expectations(raw: Any, src: str) -> Expectations:
    if not isinstance(raw, Mapping):
        raise CaseError(f"{src}: expect must be a mapping")
    unknown = set(raw) - _EXPECT_KEYS
    if unknown:
        raise CaseError(f"{src}: expect: unknown field(s) {_names(unknown)}; expect takes "
                        f"{', '.join(sorted(_EXPECT_KEYS))}")

    def integer(key: str, default: int | None, lo: int, hi: int) -> int | None:
        value = raw.get(key, default)
        if value is None and default is None:  # width and height: not checked; `images:` left empty is no number
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise CaseError(f"{src}: expect.{key}: expected an integer in [{lo}, {hi}], got {show(value)}")
        return value

    def threshold(key: str, default: int, scale: int, what: str) -> int | None:
        # A limit at the top of its scale passes every render: a golden test that cannot fail vouches for any digest.
        value = raw.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= scale:
            raise CaseError(f"{src}: expect.{key}: {show(value)} lets every render pass ({what} is at most {scale}); "
                            f"the largest value that still tests something is {scale - 1}")
        return integer(key, default, 0, scale - 1)

    status = raw.get("status", "completed")
    if status != "completed":
        raise CaseError(f"{src}: expect.status: only `completed` is supported (a golden case must succeed)")
    content_type = raw.get("content_type", "image/png")
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
        raise CaseError(f"{src}: expect.content_type: expected an image media type, got {show(content_type)}")
    reference = raw.get("reference")
    if reference is not None and (not isinstance(reference, str) or not _REFERENCE.fullmatch(reference)):
        raise CaseError(f"{src}: expect.reference: a PNG file name in the target's references directory "
                        "(references/local/, references/cloud/; no directories, at most 128 characters)")
    latency = raw.get("max_latency_s")
    if latency is not None and (not isinstance(latency, int | float) or isinstance(latency, bool)
                                or not 0 < latency <= 86_400):
        raise CaseError(f"{src}: expect.max_latency_s: expected seconds in (0, 86400], got {show(latency)}")
    exp = Expectations(status=status, images=integer("images", 1, 1, 64),
                       width=integer("width", None, 1, 16_384), height=integer("height", None, 1, 16_384),
                       content_type=content_type, min_bytes=integer("min_bytes", 1, 1, 2**31),
                       max_bytes=integer("max_bytes", 50_000_000, 1, 2**33), reference=reference,
                       max_hash_distance=threshold("max_hash_distance", 8, HASH_BITS, "a dHash distance"),
                       max_color_distance=threshold("max_color_distance", 24, COLOR_MAX, "a mean colour difference"),
                       max_latency_s=float(latency) if latency is not None else None)
    if exp.min_bytes > exp.max_bytes:
        raise CaseError(f"{src}: expect.min_bytes exceeds expect.max_bytes")
    if exp.width and exp.height and exp.width * exp.height > MAX_PIXELS:
        # The runner refuses to decode a render that large, so such a case could never pass.
        raise CaseError(f"{src}: expect.width x height is {exp.width * exp.height} pixels, more than the "
                        f"{MAX_PIXELS} the golden runner decodes")
    return exp
