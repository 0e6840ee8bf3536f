"""The custom node manifest (custom_nodes.yaml): each ComfyUI custom node the image installs, pinned to a commit, and
its install at build time.

The Dockerfile runs `python custom_nodes.py install custom_nodes.yaml /comfyui/custom_nodes` before the package is
copied, so this file imports nothing of the package (PyYAML, which ComfyUI itself needs, is in the base image).
`goldgate build` reads the node types each entry provides, and the local ComfyUI emulator names the entry of a node type
it cannot run. A commit is pinned by its full sha1: a branch moves and a tag can be re-pointed, so either would bake
whatever it names on the day of the build, and an abbreviated sha may become ambiguous as the repository grows.

A node's Python dependencies are the other half of its supply chain. An entry's `requirements: custom_nodes/<file>.txt`
names a hash-locked file kept beside custom_nodes.yaml (pip-compile --generate-hashes of the node's requirements),
installed in pip's hash-checking mode, wheels only, instead of the node's own requirements.txt; `requirements: none`
says the node has no requirements.txt (the install fails if it has one). An entry that says neither installs the node's
own requirements.txt unpinned, as ComfyUI-Manager does, with a warning line: the production checklist refuses it for
PROD (goldgate.ops.checklist, `custom_nodes_locked`). Our requirements.txt installs after the nodes, so a lock that pins
a package at another version than requirements.txt (or than another lock) is refused when the file is read: the later
install would replace the version the node was locked and tested with. `pip check` cannot stand in for that: a node is
no installed distribution, so nothing declares what its code imports, and the base image's ComfyUI may fail it already.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import reprlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:   # said by load_custom_nodes: the Dockerfile runs this before the worker's requirements
    yaml = None  # type: ignore[assignment]

MAX_MANIFEST_BYTES = 1_000_000
MAX_SHOWN_CHARS = 120
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# A folder under /comfyui/custom_nodes/: one path component, no dotfile (ComfyUI skips those), no `..`.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Where a repository may come from. file:// is how tests (and a builder with a local mirror) serve one.
_URL = re.compile(r"^(https://|ssh://|file://|git@[A-Za-z0-9.-]+:)\S+$")
_ENTRY_KEYS = ("url", "commit", "name", "nodes", "requirements", "emulate")
# `requirements:` names a file of the custom_nodes/ folder beside custom_nodes.yaml: one path component, no traversal.
_LOCK_PATH = re.compile(r"^custom_nodes/[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.txt$")
NO_REQUIREMENTS = "none"
MAX_LOCK_BYTES = 1_000_000
# One pin of a lock: `name[extras]==version`, an optional environment marker after `;`.
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*(?P<version>[^\s;*=]+)\s*(?:;.*)?$")
_HASH_OPTION = re.compile(r"^--hash[= ](sha256|sha384|sha512):[0-9a-f]{64,128}$")


class CustomNodesError(ValueError):
    """custom_nodes.yaml is not valid; the message names the entry and the field."""


class InstallFailed(RuntimeError):
    """A custom node did not install; the message names the entry and the step."""


@dataclass(frozen=True)
class CustomNode:
    name: str                       # its folder under /comfyui/custom_nodes/
    url: str
    commit: str                     # 40 lowercase hex
    nodes: tuple[str, ...] = ()     # the node types it provides, when the entry says (ComfyUI's class_type names)
    # `requirements:` as the entry gives it: "custom_nodes/<file>.txt", NO_REQUIREMENTS, or None (not said: the node's
    # own requirements.txt, unlocked)
    requirements: str | None = None
    lock: Path | None = None        # the lock file, when the entry names one and the manifest was read from a file
    pins: tuple[tuple[str, str], ...] = ()   # (normalized name, version) of every pin of the lock
    # `emulate:` as the entry gives it: the local ComfyUI emulator's stand-ins for its node types, read and validated
    # by goldgate.local.comfyui.stand_ins (the image never reads them)
    emulate: Any = field(default=None, compare=False)

    @property
    def locked(self) -> bool:
        """Its dependencies reach the image checked: a hash-locked file, or none at all."""
        return self.requirements is not None

    @property
    def described(self) -> str:
        return f"{self.name} ({self.url} at {self.commit[:12]})"


@dataclass(frozen=True)
class CustomNodes:
    entries: tuple[CustomNode, ...] = ()
    # Node types the base image's ComfyUI has that goldgate does not emulate (a comfy_extras node such as FluxGuidance):
    # `goldgate build` knows them without a custom node entry.
    core_nodes: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def declares_anything(self) -> bool:
        return bool(self.entries or self.core_nodes)

    def provider(self, node_type: str) -> CustomNode | None:
        return next((e for e in self.entries if node_type in e.nodes), None)


# A bounded repr: a YAML alias bomb (a few hundred bytes naming one list a billion times over) is shown in a few
# characters, where repr() would expand every alias first.
class _Shown(reprlib.Repr):
    """An integer too long to print (a YAML hex literal of thousands of digits) is named by its size: repr refuses it.
    As workflows.shown's; this file runs alone in the image build, so it imports none of its package."""

    def repr_int(self, x: int, level: int) -> str:
        return super().repr_int(x, level) if x.bit_length() <= 1_000 else f"<an integer of {x.bit_length()} bits>"


_SHOWN = _Shown()   # its limits set one by one: Repr() takes them as arguments only from Python 3.12
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 3, 6, 6, MAX_SHOWN_CHARS, 40


def shown(value: Any) -> str:
    text = _SHOWN.repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "..."


def _commit(raw: Any, where: str) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise CustomNodesError(f"{where}.commit was read as a number: quote it (commit: \"...\"), a full 40-hex sha")
    if not isinstance(raw, str) or not raw:
        raise CustomNodesError(f"{where}.commit must be the full 40-hex commit sha, got {shown(raw)}")
    if _HEX.fullmatch(raw) and len(raw) == 40:
        return raw.lower()
    if _HEX.fullmatch(raw) and len(raw) < 40:
        raise CustomNodesError(f"{where}.commit {shown(raw)} is an abbreviated sha: it may name another commit once "
                               "the repository grows; write all 40 hex digits (`git rev-parse <sha>` in a clone)")
    raise CustomNodesError(f"{where}.commit {shown(raw)} is not a commit sha but a branch or tag name: a branch moves "
                           "and a tag can be re-pointed, so the image would hold whatever it names on the day of the "
                           "build; pin the full 40-hex commit (`git ls-remote <url> <branch or tag>` prints it)")


def _url(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not _URL.fullmatch(raw):
        raise CustomNodesError(f"{where}.url must be a git repository URL (https://, ssh://, git@host:path or "
                               f"file://), got {shown(raw)}")
    if re.match(r"^[a-z]+://[^/@]*@", raw) and not raw.startswith("ssh://"):
        # A token in the URL would stay in the image's build history and in every log line naming the entry.
        raise CustomNodesError(f"{where}.url carries credentials (user or token before `@`): the build history and "
                               "its logs would keep them; serve a private node from a mirror the builder reads "
                               "without one")
    return raw


def _default_name(url: str) -> str:
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail.removesuffix(".git")


def _node_types(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) and n.strip() == n and n for n in raw):
        raise CustomNodesError(f"{where} must be a list of node type names (ComfyUI's class_type, e.g. "
                               f"\"Image Save\"), got {shown(raw)}")
    twice = sorted(n for n, count in collections.Counter(raw).items() if count > 1)
    if twice:
        raise CustomNodesError(f"{where} lists a node type twice: {shown(twice)}")
    return tuple(raw)


def _requirements(raw: Any, where: str) -> str | None:
    if raw is None or raw == NO_REQUIREMENTS:
        return raw
    if not isinstance(raw, str) or not _LOCK_PATH.fullmatch(raw):
        raise CustomNodesError(f"{where}.requirements must be `custom_nodes/<file>.txt` (a hash-locked file of the "
                               "custom_nodes/ folder beside custom_nodes.yaml) or `none` (the node has no "
                               f"requirements.txt), got {shown(raw)}")
    return raw


def normalized(name: str) -> str:
    """A package name as pip compares them (PEP 503): `Foo_Bar.baz` is `foo-bar-baz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement line: `\\`-continued lines joined, comments and blanks dropped."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", line)   # pip's rule: a `#` at the start or after a blank opens a comment
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            lines.append((start, joined))
    if pending.strip():
        lines.append((start, pending.strip()))
    return lines


def read_pins(path: Path, where: str) -> tuple[tuple[str, str], ...]:
    """The pins of a hash-locked requirements file, each `name==version` with at least one `--hash`, and nothing
    else: an option (`-r`, `-e`, `--index-url`, a path or URL) would make pip read what no hash here covers, or read
    it from elsewhere. (normalized name, version) in the file's order."""
    try:
        if path.is_symlink() or not path.is_file():
            raise CustomNodesError(f"{where}: {path} is not a regular file (`pip-compile --generate-hashes` writes it; "
                                   "`git add` it beside custom_nodes.yaml)")
        if path.stat().st_size > MAX_LOCK_BYTES:
            raise CustomNodesError(f"{where}: {path} is larger than {MAX_LOCK_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CustomNodesError(f"{where}: cannot read {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise CustomNodesError(f"{where}: {path} is not UTF-8 text") from None
    pins: dict[str, tuple[str, int]] = {}
    for number, line in _logical_lines(text):
        requirement, _, options = line.partition(" --")
        options = ("--" + options).split() if options else []
        pin = _PIN.match(requirement.strip())
        if pin is None or requirement.lstrip().startswith("-"):
            raise CustomNodesError(f"{where}: {path} line {number}: {shown(line)} is not an exact pin "
                                   "(`name==version`) followed by its `--hash=sha256:...`; a lock holds pins and "
                                   "their hashes only: regenerate it with `pip-compile --generate-hashes`")
        # `--hash sha256:...` (a blank, not `=`) is two words: read them as one.
        joined = " ".join(options).replace("--hash ", "--hash=").split()
        bad = [o for o in joined if not _HASH_OPTION.match(o)]
        if bad:
            raise CustomNodesError(f"{where}: {path} line {number}: {shown(bad[0])} is not a `--hash=sha256:...`; a "
                                   "lock holds pins and their hashes only (an index, a file or a URL named there "
                                   "would be read unchecked): regenerate it with `pip-compile --generate-hashes "
                                   "--no-emit-index-url --no-emit-find-links`")
        if not joined:
            raise CustomNodesError(f"{where}: {path} line {number} pins {requirement.strip()} without a hash: pip "
                                   "would install whatever file the index holds for it; regenerate the file with "
                                   "`pip-compile --generate-hashes`")
        name = normalized(pin["name"])
        if name in pins:
            raise CustomNodesError(f"{where}: {path} pins {pin['name']} twice (lines {pins[name][1]} and {number}); "
                                   "lock it for the image's Python alone, one pin per package")
        pins[name] = (pin["version"], number)
    if not pins:
        raise CustomNodesError(f"{where}: {path} pins nothing; a node without requirements.txt takes "
                               "`requirements: none` instead")
    return tuple((name, version) for name, (version, _) in pins.items())


def _same_version(a: str, b: str) -> bool:
    try:   # pip's own reading (1.0 is 1.0.0) where packaging is there, as it is beside pip in every image
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return a.lower() == b.lower()
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a.lower() == b.lower()


def conflicting_pins(entries: tuple[CustomNode, ...], worker: tuple[tuple[str, str], ...] | None,
                     worker_source: str = "requirements.txt") -> list[str]:
    """Each package a node's lock pins at another version than our requirements.txt (which installs after the nodes,
    so its version would replace the node's) or than an earlier node's lock (whose version the later install would
    replace), naming both pins."""
    theirs = dict(worker or ())
    found = []
    seen: dict[str, tuple[str, CustomNode]] = {}
    for entry in entries:
        for name, version in entry.pins:
            if name in theirs and not _same_version(version, theirs[name]):
                found.append(f"{entry.name}'s {entry.requirements} pins {name}=={version}, {worker_source} "
                             f"{name}=={theirs[name]}")
            earlier = seen.get(name)
            if earlier is not None and not _same_version(version, earlier[0]):
                found.append(f"{entry.name}'s {entry.requirements} pins {name}=={version}, {earlier[1].name}'s "
                             f"{earlier[1].requirements} {name}=={earlier[0]}")
            seen.setdefault(name, (version, entry))
    return found


def _entry(raw: Any, where: str) -> CustomNode:
    if not isinstance(raw, dict):
        raise CustomNodesError(f"{where} must be a mapping with url and commit (and optionally name, nodes, "
                               "requirements)")
    unknown = sorted(str(k) for k in raw if k not in _ENTRY_KEYS)
    if unknown:
        raise CustomNodesError(f"{where} has unknown field(s) {', '.join(unknown)} (an entry takes "
                               f"{', '.join(_ENTRY_KEYS)}); a branch or tag goes nowhere: pin `commit`")
    for key in ("url", "commit"):
        if key not in raw:
            raise CustomNodesError(f"{where} lacks {key!r}")
    url = _url(raw["url"], where)
    name = raw.get("name")
    name = _default_name(url) if name is None else name
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CustomNodesError(f"{where}.name must be a folder name (letters, digits, `.`, `_`, `-`, not starting with "
                               f"a dot), got {shown(name)}{'' if 'name' in raw else ' (taken from the url: set name)'}")
    where = f"{where} ({name})"
    return CustomNode(name=name, url=url, commit=_commit(raw["commit"], where),
                      nodes=_node_types(raw.get("nodes"), f"{where}.nodes"),
                      requirements=_requirements(raw.get("requirements"), where), emulate=raw.get("emulate"))


def _with_lock(entry: CustomNode, folder: Path, where: str) -> CustomNode:
    """The entry with its lock file read (relative to custom_nodes.yaml's folder), when it names one."""
    if entry.requirements in (None, NO_REQUIREMENTS):
        return entry
    lock = folder / str(entry.requirements)
    return dataclasses.replace(entry, lock=lock, pins=read_pins(lock, f"{where} ({entry.name}).requirements"))


def parse_custom_nodes(raw: Any, source: str = "<custom_nodes>", path: Path | None = None,
                       worker_requirements: Path | None = None) -> CustomNodes:
    """The manifest validated; read from `path`, each entry's lock file is read too (relative to its folder), and
    compared with `worker_requirements` (our requirements.txt, which installs after the nodes) when given."""
    if raw is None:
        return CustomNodes(path=path)   # an empty file: nothing to install
    if not isinstance(raw, dict) or raw.get("schema") != 1:
        raise CustomNodesError(f"{source}: expected a mapping with `schema: 1` and a `custom_nodes` list")
    unknown = sorted(str(k) for k in raw if k not in ("schema", "custom_nodes", "core_nodes"))
    if unknown:
        raise CustomNodesError(f"{source}: unknown top-level field(s) {', '.join(unknown)} (it takes schema, "
                               "custom_nodes, core_nodes)")
    listed = raw.get("custom_nodes")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise CustomNodesError(f"{source}: custom_nodes must be a list of entries, got {shown(listed)}")
    entries = tuple(_entry(e, f"{source}: custom_nodes[{i}]") for i, e in enumerate(listed))
    if path is not None:
        entries = tuple(_with_lock(e, path.parent, f"{source}: custom_nodes[{i}]") for i, e in enumerate(entries))
    names: dict[str, CustomNode] = {}
    provided: dict[str, CustomNode] = {}
    for entry in entries:
        # Folders differing only in case collide on a case-insensitive builder disk.
        other = names.setdefault(entry.name.lower(), entry)
        if other is not entry:
            raise CustomNodesError(f"{source}: two entries install into custom_nodes/{entry.name} ({other.url} and "
                                   f"{entry.url}); give one another `name`")
        for node_type in entry.nodes:
            first = provided.setdefault(node_type, entry)
            if first is not entry:
                # ComfyUI keeps whichever loads last: which code runs would depend on folder order.
                raise CustomNodesError(f"{source}: node type {node_type!r} is listed by both {first.name} and "
                                       f"{entry.name}; ComfyUI runs only one of them: keep one entry's")
    core = _node_types(raw.get("core_nodes"), f"{source}: core_nodes")
    both = sorted(set(core) & provided.keys())
    if both:
        raise CustomNodesError(f"{source}: {', '.join(map(repr, both))} listed both in core_nodes and by a custom "
                               "node entry; keep one")
    worker = None
    if worker_requirements is not None and any(e.pins for e in entries):
        worker = read_pins(worker_requirements, f"{source}: the worker's requirements")
    conflicts = conflicting_pins(entries, worker, worker_requirements.name if worker_requirements else "")
    if conflicts:
        more = f" (and {len(conflicts) - 2} more)" if len(conflicts) > 2 else ""
        raise CustomNodesError(f"{source}: {'; '.join(conflicts[:2])}{more}: whichever installs later replaces the "
                               "other's version (requirements.txt installs after every node, the nodes in their "
                               "order), so a node would run with a version it was not locked and tested with; make "
                               "the pins agree: re-lock the node against that version (`pip-compile "
                               "--generate-hashes` with it pinned in the node's requirements), or change our pin in "
                               "requirements.txt (scripts/lock_worker_requirements.py rewrites its hashes)")
    return CustomNodes(entries=entries, core_nodes=core, path=path)


_BESIDE = Path("requirements.txt")


def load_custom_nodes(path: Path, worker_requirements: Path | None = _BESIDE) -> CustomNodes:
    """custom_nodes.yaml read and validated, with the lock files its entries name; a missing file declares nothing (a
    checkout from before it existed). Each lock's pins are compared with `worker_requirements`: by default the
    requirements.txt beside the file when there is one (images/worker, as `goldgate build` reads it; in the image the
    Dockerfile's `check-pins` step names it), None: not compared."""
    if worker_requirements is _BESIDE:
        beside = path.parent / "requirements.txt"
        worker_requirements = beside if beside.is_file() else None
    if yaml is None:
        raise CustomNodesError(f"{path}: cannot be read: this python ({sys.executable}) has no PyYAML, which ComfyUI "
                               "itself needs; is BASE_IMAGE a ComfyUI image?")
    try:
        if not path.exists():
            return CustomNodes(path=path)
        if not path.is_file():   # a FIFO would block the build for ever
            raise CustomNodesError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise CustomNodesError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except CustomNodesError:
        raise
    except OSError as exc:
        raise CustomNodesError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CustomNodesError(f"{path}: not valid YAML ({str(exc)[:300]})") from None
    except (ValueError, RecursionError, KeyError, IndexError, TypeError, AttributeError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0][:200]
        raise CustomNodesError(f"{path}: not valid YAML ({type(exc).__name__}: {reason})") from None
    return parse_custom_nodes(raw, str(path), path, worker_requirements)


# -- the install (the Dockerfile's step) ---------------------------------------------------------------------------

Runner = Callable[..., subprocess.CompletedProcess]


def _step(entry: CustomNode, what: str, argv: list[str], cwd: Path | None = None) -> str:
    """Run one step of an entry's install; its failure is InstallFailed naming the entry, the step and its last words."""
    # No prompt for a password (a private or mistyped URL): the build fails instead of waiting for ever.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        hint = f"; install {argv[0]} in the image before this step" if isinstance(exc, FileNotFoundError) else ""
        raise InstallFailed(f"custom node {entry.described}: {what} could not run ({argv[0]}: {exc.strerror}){hint}") \
            from None
    if done.returncode != 0:
        said = " | ".join(line.strip() for line in (done.stderr or done.stdout).strip().splitlines()[-6:])
        raise InstallFailed(f"custom node {entry.described}: {what} failed (exit {done.returncode}): {said[:1500]}")
    return done.stdout


# What ComfyUI's GPU work is built on: the base image installs them matched to its CUDA, and a custom node's
# requirements.txt that names another version (or an unpinned `torch` pip upgrades) would break every render.
HELD_PACKAGES = ("torch", "torchvision", "torchaudio", "xformers")


def held_versions() -> list[tuple[str, str]]:
    """The installed version of each of HELD_PACKAGES (GOLDGATE_TEST_HELD_PACKAGES, comma-separated, replaces the
    list: only tests set it, the Dockerfile never does)."""
    from importlib import metadata

    names = os.environ.get("GOLDGATE_TEST_HELD_PACKAGES")
    held = []
    for name in names.split(",") if names else HELD_PACKAGES:
        try:
            held.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return held


def lock_command(entry: CustomNode) -> str:
    """The command that makes `entry`'s hash-locked requirements, as the warning and the checklist give it."""
    return (f"`pip-compile --generate-hashes --output-file images/worker/custom_nodes/{entry.name}.txt "
            f"requirements.txt` in a clone of {entry.url} at {entry.commit}, then `requirements: "
            f"custom_nodes/{entry.name}.txt` in its entry")


def _pip_install(entry: CustomNode, target: Path, requirements: Path, locked: bool) -> None:
    """pip-install a requirements file for `entry`, the base image's HELD_PACKAGES held at their versions."""
    held = held_versions()
    handle, name = tempfile.mkstemp(prefix="custom-node-constraints-", suffix=".txt")
    constraints = Path(name)
    with os.fdopen(handle, "w") as out:
        out.write("".join(f"{package}=={version}\n" for package, version in held))
    shown_file = entry.requirements if locked else "requirements.txt"
    what = f"pip install -r {shown_file}" + (
        f" (the base image's {', '.join(f'{n} {v}' for n, v in held)} held as they are: a requirement that "
        "needs another version fails here instead of breaking ComfyUI's CUDA build)" if held else "")
    # A lock installs in hash-checking mode (a file whose sha256 it does not list, or a dependency it does not pin,
    # is refused) and from wheels only: building an sdist would fetch its build tools, which no hash covers.
    checked = ["--require-hashes", "--only-binary=:all:"] if locked else []
    try:
        # From its folder, so a relative path in the node's own file means what its authors meant.
        _step(entry, what, [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-input", *checked,
                            "-c", str(constraints), "-r", str(requirements)], cwd=target)
    finally:
        constraints.unlink()


def install_one(entry: CustomNode, dest: Path, say: Callable[[str], None] = print) -> None:
    """Fetch `entry` at its commit into dest/<name>, check HEAD is that commit, install its dependencies: its lock
    when the entry names one, else its own requirements.txt (with a warning: unlocked)."""
    target = dest / entry.name
    if target.exists():
        raise InstallFailed(f"custom node {entry.described}: {target} exists already (the base image ships a folder "
                            "of that name?); give the entry another `name`")
    git = ["git", "-C", str(target)]
    _step(entry, "git init", ["git", "init", "-q", str(target)])
    _step(entry, "git remote add", [*git, "remote", "add", "origin", entry.url])
    try:   # the commit alone, when the server gives a commit by its sha (GitHub, GitLab, git's protocol v2 do)
        _step(entry, "fetch of the commit", [*git, "fetch", "-q", "--depth", "1", "origin", entry.commit])
    except InstallFailed:   # else the whole history, which holds it if any branch or tag reaches it
        _step(entry, "fetch", [*git, "fetch", "-q", "--tags", "origin"])
        try:
            _step(entry, "finding the commit", [*git, "cat-file", "-e", f"{entry.commit}^{{commit}}"])
        except InstallFailed:
            raise InstallFailed(f"custom node {entry.described}: the repository has no commit {entry.commit} (nor "
                                "does any of its branches or tags reach it); check the sha in custom_nodes.yaml (a "
                                "force-push may have dropped it)") from None
    _step(entry, f"checkout of {entry.commit}", [*git, "-c", "advice.detachedHead=false", "checkout", "-q",
                                                 "--detach", entry.commit])
    head = _step(entry, "reading HEAD", [*git, "rev-parse", "HEAD"]).strip()
    if head != entry.commit:
        raise InstallFailed(f"custom node {entry.described}: HEAD is {head}, not the pinned {entry.commit}")
    if (target / ".gitmodules").is_file():
        _step(entry, "submodules", [*git, "submodule", "update", "--init", "--recursive"])
    own = target / "requirements.txt"
    if entry.requirements == NO_REQUIREMENTS:
        if own.exists():
            raise InstallFailed(f"custom node {entry.described}: its entry says `requirements: none`, but the commit "
                                f"has a requirements.txt; lock it: {lock_command(entry)}")
    elif entry.requirements is not None:
        if entry.lock is None:   # a manifest parsed from no file: no folder to find the lock in
            raise InstallFailed(f"custom node {entry.described}: {entry.requirements} was not read")
        _pip_install(entry, target, entry.lock.resolve(), locked=True)
        if own.exists():
            say(f"custom_nodes: {entry.name}: its own requirements.txt is not read: {entry.requirements} replaces it")
    elif own.is_file():
        # One line a build log reader finds: the first upload of each dependency pip resolves reaches the image
        # unchecked. The production checklist refuses the entry for PROD (`custom_nodes_locked`).
        say(f"custom_nodes: WARNING: {entry.name} installs its own requirements.txt without pins or hashes (whatever "
            f"the index holds today reaches the image unchecked); lock it: {lock_command(entry)}")
        _pip_install(entry, target, own, locked=False)
    else:
        say(f"custom_nodes: {entry.name} has no requirements.txt: `requirements: none` in its entry says so to the "
            "production checklist (and fails the build if a later commit adds one)")
    # A clone under a builder's umask 077 would be unreadable to uid 10001, which runs ComfyUI.
    _step(entry, "chmod", ["chmod", "-R", "a+rX,go-w", str(target)])


def install(nodes: CustomNodes, dest: Path, say: Callable[[str], None] = print) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if not nodes.entries:
        say(f"custom_nodes: none to install ({nodes.path})")
    for entry in nodes.entries:
        say(f"custom_nodes: installing {entry.described} into {dest / entry.name}")
        install_one(entry, dest, say)
        say(f"custom_nodes: {entry.name} at {entry.commit}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("install", "check-pins"):
        print("usage: custom_nodes.py install CUSTOM_NODES_YAML DEST (e.g. /comfyui/custom_nodes)\n"
              "       custom_nodes.py check-pins CUSTOM_NODES_YAML REQUIREMENTS_TXT (refuses a lock pinning a "
              "package at another version)", file=sys.stderr)
        return 2
    try:
        if args[0] == "check-pins":
            # The Dockerfile's step before requirements.txt installs: a `docker build` run without goldgate (whose
            # build reads the two files beside each other) refuses a conflicting pin too.
            nodes = load_custom_nodes(Path(args[1]), worker_requirements=Path(args[2]))
            print(f"custom_nodes: {sum(len(e.pins) for e in nodes.entries)} pin(s) of the custom nodes' locks "
                  f"agree with {args[2]}")
        else:
            install(load_custom_nodes(Path(args[1])), Path(args[2]))
    except (CustomNodesError, InstallFailed) as exc:
        print(f"custom_nodes: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
