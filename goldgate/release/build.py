"""Build the worker image once and name it immutably.

The tag is derived from what makes a release: `<workflow version>-g<git commit>-m<model manifest sha256[:12]>`. A tag is
never re-pointed: before pushing, the registry is asked what the tag names now; if it names other content the build is
refused. The image carries the sha256 of what the build is made from (the build context docker is sent, and the
Dockerfile) as a label, so a rebuild of the same source (a CI re-run on a fresh runner, where the builder's timestamps
make other bytes) takes the image already pushed under the tag instead of being refused; a tag that names an image built
from other source is refused before the build (it would be after, and the build bakes many GB of models). So is a build
that would send docker a file git does not track (`check_tracked`): the image would hold what its commit does not; so
is one whose custom_nodes.yaml is invalid or, once that file declares anything, whose workflows use a node type nobody
provides (`check_node_types`), and a docker build whose Dockerfile never installs the nodes it lists. The
build's output is said line by line as the engine sends it. The push stream is read to the end (the docker SDK does not
raise on a failed push: an `error`/`errorDetail` line is the failure), and the digest comes from its final `aux` line.
The push waits on the engine without a read timeout: the engine says nothing while the registry takes in a many-GB model
layer, and a client that stops listening makes the engine give the push up. A connection to the engine that breaks
during the build, the pull or the push is that step's one-line failure. The result is `repo@sha256:<digest>`, the only
form a stack runs.

Without Docker (the local target) the worker is snapshotted into the content-addressed local image
store instead: `local/worker@sha256:<hex>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import GoldgateError

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_DIR = REPO_ROOT / "images" / "worker"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Docker's reference grammar: path components of [a-z0-9]+ joined by one separator, `[._]`, `__` or `-+`.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(:[0-9]+)?(/{_COMPONENT})+$|^{_COMPONENT}$")
# Docker refuses a longer repository name (the distribution reference grammar's NameTotalLengthMax).
MAX_REPO_CHARS = 255
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SOURCE_LABEL = "dev.goldgate.source-sha256"
_LOCAL_REF = re.compile(r"^local/worker@sha256:([0-9a-f]{64})$")   # goldgate.local.image_store's references


class BuildFailed(GoldgateError):
    """The image did not build; the message carries the builder's last error."""


class PushFailed(GoldgateError):
    """The registry refused or broke off the push; nothing may be deployed from it."""


class TagConflict(GoldgateError):
    """The immutable tag already names other content in the registry."""


@dataclass(frozen=True)
class ReleaseIdentity:
    """What identifies a release before it has a digest."""

    workflow_version: str
    git_commit: str
    models_sha256: str
    # What the API Worker must serve beside the image (workflows_sha256): its own workflows, not the checkout's a
    # later `pulumi up` runs in. Empty when not known (an identity made by hand).
    workflows_sha256: str = ""
    # Each workflow's `<id>@<version>` and the sha256 of what renders under it (render_sha256): what a later build
    # compares its own with (reused_workflow_versions), without the image or its commit at hand. Empty when not known.
    workflow_renders: tuple[tuple[str, str], ...] = ()

    @property
    def tag(self) -> str:
        tag = f"{self.workflow_version}-g{self.git_commit[:12]}-m{self.models_sha256[:12]}"
        if not _TAG.match(tag):
            raise BuildFailed(f"derived tag {tag!r} is not a valid image tag; check workflow_version")
        return tag


@dataclass(frozen=True)
class BuildResult:
    image: str                 # repo@sha256:<hex>, what stacks run
    release_id: str            # the immutable tag
    repo: str
    digest: str
    identity: ReleaseIdentity
    target: str                # "docker" | "local"
    reused: bool = False       # the registry already held this exact content under the tag

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "release_id": self.release_id, "repo": self.repo, "digest": self.digest,
                "workflow_version": self.identity.workflow_version, "git_commit": self.identity.git_commit,
                "models_sha256": self.identity.models_sha256,
                **({"workflows_sha256": self.identity.workflows_sha256} if self.identity.workflows_sha256 else {}),
                **({"workflow_renders": dict(self.identity.workflow_renders)} if self.identity.workflow_renders
                   else {}),
                "target": self.target, "reused": self.reused}


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The checked-out commit (full sha); `GITHUB_SHA`-free so it is the same in CI and locally."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=30, check=False)
    except FileNotFoundError:
        raise BuildFailed(f"cannot read the git commit of {repo}: git is not installed (no `git` on PATH); "
                          "install git (or put it on PATH)") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildFailed(f"cannot read the git commit of {repo} ({exc}); build from a git checkout") from None
    if out.returncode != 0:
        from goldgate.release.cases import git_said, git_way_out  # only a build that fails here reads them

        # "build from a git checkout" sent the owner of a checkout git refuses (another user's: "detected dubious
        # ownership") looking for one: git's own words, and its way out.
        said = git_said(out.stderr.encode(), out.returncode)
        way = "build from a git checkout" if "not a git repository" in said else git_way_out(said, repo, repo)
        raise BuildFailed(f"cannot read the git commit of {repo} ({said}); {way}")
    return out.stdout.strip()


def manifest_sha256(context: Path) -> str:
    """sha256 of the model manifest (`models.yaml`) the image bakes; the empty hash if it has none."""
    path = context / "models.yaml"
    return hashlib.sha256(path.read_bytes() if path.is_file() else b"").hexdigest()


def workflows_sha256(workflows_dir: Path) -> str:
    """sha256 of a workflows directory as the API Worker's bundle takes it (infra/worker_bundle.py: every
    `*.json` file, by name): equal hashes, equal workflows served."""
    digest = hashlib.sha256()
    for path in sorted(workflows_dir.glob("*.json")) if workflows_dir.is_dir() else []:
        body = path.read_bytes()
        digest.update(f"{path.name}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()


def reused_workflow_versions(context: Path, home: Path, target: str, project_dir: Path = REPO_ROOT,
                             stack: str = "prod") -> list[str]:
    """One line per workflow of `context/workflows` whose `<id>@<version>` PROD's image (the ledger's newest promotion
    or rollback of `stack` on `target`) also ships, in another graph or other parameters: a graph edited without
    raising its version. Jobs, logs and metrics name a workflow by `<id>@<version>` alone, so the two renders would
    be one to them. Said, not refused: a team may keep the version of a change meant to be invisible, on purpose
    (raising it fails the jobs that meet a worker of the other release while workers roll over).
    PROD's workflows are read where they are at hand, without pulling an image: a local image's snapshot
    (`<home>/images/<hex>/worker/workflows`: what changed, node by node); else what the image's build recorded in the
    ledger, `workflow_renders` (a CI build's checkout need not hold PROD's commit); else, for an image built before
    builds recorded it, its build commit's files read from git (deployers/image_workflows.py). Without a PROD image,
    or any of these, there is nothing to compare: nothing is said."""
    from goldgate.release.history import on_target
    from goldgate.release.ledger import Ledger

    here = _workflow_files(context / "workflows")
    if not here:
        return []
    try:
        entries = Ledger(home).entries()
    except (GoldgateError, OSError):
        return []   # the build's own ledger entry says what is wrong with the ledger
    image = next((e.get("pinned") or e.get("after") for e in reversed(on_target(entries, target))
                  if e.kind in ("promotion", "rollback") and e.get("phase") == "outcome"
                  and e.get("stack", "prod") == stack and isinstance(e.get("pinned") or e.get("after"), str)), None)
    if image is None:
        return []
    recorded = next((e.get("workflow_renders") for e in reversed(entries) if e.kind == "build"
                     and e.get("image") == image and isinstance(e.get("workflow_renders"), dict)), None)
    local = _LOCAL_REF.match(image)   # the local image store's: its snapshot is at hand, whatever it was built from
    snapshot = Path(home) / "images" / local.group(1) / "worker" / "workflows" if local else None
    theirs = _workflow_files(snapshot) if snapshot is not None and snapshot.is_dir() else None
    if theirs is None and recorded is None:
        theirs = _from_build_commit(project_dir, home, image)
    lines = []
    for wid, mine in sorted(here.items()):
        version = mine.get("version")
        if not isinstance(version, str):
            continue   # a file the build's own checks refuse
        prod = (theirs or {}).get(wid)
        if prod is not None:
            changed = _changes(prod, mine) if prod.get("version") == version else ""
        elif theirs is None and recorded is not None and recorded.get(version) not in (None, render_sha256(mine)):
            changed = "its graph or parameters"
        else:
            continue
        if changed:
            lines.append(f"workflow {wid} differs from the one PROD runs ({image}) in {changed}, under the same "
                         f"version {version}: jobs, logs and metrics would take the two renders for one; "
                         "raise its `version`, or ship the change as a new id (docs/RUNBOOK.md, \"Ship a new version "
                         "of a workflow\")")
    return lines


def _from_build_commit(project_dir: Path, home: Path, image: str) -> dict[str, dict[str, Any]] | None:
    """The workflow files `image` was built with, as the cloud deploy finds them (the checkout's when they are the
    ones its build recorded, else its build commit's from git); None when they cannot be had."""
    import tempfile

    from goldgate.release.deployers.image_workflows import resolve

    with tempfile.TemporaryDirectory(prefix="goldgate-prod-workflows-") as scratch:
        try:
            found = resolve(project_dir, home, image, Path(scratch))
        except GoldgateError:
            return None
        return _workflow_files(found.directory) if found.directory is not None else None


def _workflow_files(directory: Path) -> dict[str, dict[str, Any]]:
    """The workflow files of `directory` as read (JSON objects with a string id), by id; unreadable ones are left to
    the build's own checks."""
    import json

    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            found[body["id"]] = body
    return found


def link_type_mismatches(graph: Mapping[str, Any], node_types: Mapping[str, Any]) -> list[str]:
    """Each link of a ComfyUI API-format `graph` into an input of another type than the output it comes from, as
    ComfyUI's validation refuses the whole prompt for it ("Return type mismatch between linked nodes"): a sentence
    naming the node, its input, the type it takes, the node and output linked to and that output's type. Only links
    between node types `node_types` knows (the ComfyUI emulator's NODE_TYPES: its `required` inputs, its `outputs`)
    are judged: a custom node's types are not known here. A COMBO input (a list of choices, a model file name) takes
    no link from these nodes' outputs in ComfyUI either."""
    found = []
    for node_id, node in graph.items():
        node_type = node_types.get(node.get("class_type")) if isinstance(node.get("class_type"), str) else None
        if node_type is None:
            continue
        for name, value in (node.get("inputs") or {}).items():
            spec = node_type.required.get(name)
            if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str) or spec is None:
                continue
            source = graph.get(value[0])
            source_class = source.get("class_type") if isinstance(source, dict) else None
            source_type = node_types.get(source_class) if isinstance(source_class, str) else None
            slot = value[1]
            if source_type is None or not isinstance(slot, int) or isinstance(slot, bool):
                continue
            takes = spec[0] if isinstance(spec[0], str) else "COMBO"
            what = f"node {node_id} ({node_type.name}) input {name!r} takes {takes}, but is linked to node {value[0]} " \
                   f"({source_type.name}) output {slot}"
            if not 0 <= slot < len(source_type.outputs):
                outputs = ", ".join(source_type.outputs) or "none"
                found.append(f"{what}, which {source_type.name} lacks (its outputs: {outputs})")
            elif source_type.outputs[slot] not in takes.split(",") and "*" not in (takes, source_type.outputs[slot]):
                found.append(f"{what}, a {source_type.outputs[slot]}")
    return found


def render_sha256(body: dict[str, Any]) -> str:
    """sha256 of what renders under a workflow's `<id>@<version>` and what clients may send it: the file as read, but
    its description and its nodes' `_meta` titles (ComfyUI ignores them), in one canonical form (spacing, key order
    and 7 vs 7.0 aside)."""
    import json

    kept = {k: v for k, v in body.items() if k != "description"}
    if isinstance(kept.get("graph"), dict):
        kept["graph"] = {k: {f: v for f, v in n.items() if f != "_meta"} if isinstance(n, dict) else n
                         for k, n in kept["graph"].items()}
    text = json.dumps(_whole_floats_as_ints(kept), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _whole_floats_as_ints(value: Any) -> Any:
    """7.0 as 7, at any depth: equal values (as Python compares them, and ComfyUI takes them) hash alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def _changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """What a render or a client would see change between two files of one workflow, in words ("" for nothing):
    its graph's nodes (their `_meta` titles aside: ComfyUI ignores them), its parameters, and any other field but
    the description."""
    def nodes(body: dict[str, Any]) -> dict[str, Any]:
        graph = body.get("graph")
        if not isinstance(graph, dict):
            return {"": graph}
        return {str(k): {f: v for f, v in n.items() if f != "_meta"} if isinstance(n, dict) else n
                for k, n in graph.items()}

    def params(body: dict[str, Any]) -> dict[str, Any]:
        listed = body.get("parameters")
        if not isinstance(listed, list):
            return {"": listed}
        return {str(p.get("name")) if isinstance(p, dict) else str(i): p for i, p in enumerate(listed)}

    said = []
    a, b = nodes(before), nodes(after)
    if a != b:
        ids = sorted((k for k in a.keys() | b.keys() if a.get(k) != b.get(k)), key=lambda k: (len(k), k))
        said.append(f"its graph (node{'s' if len(ids) > 1 else ''} {', '.join(ids[:6])}{', ...' if len(ids) > 6 else ''})")
    a, b = params(before), params(after)
    if a != b or list(a) != list(b):
        names = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)] or ["their order"]
        said.append(f"its parameters ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})")
    other = sorted(k for k in (before.keys() | after.keys()) - {"id", "version", "description", "graph", "parameters"}
                   if before.get(k) != after.get(k))
    if other:
        said.append(f"its {', '.join(other)}")
    return " and ".join(said)


def identity_for(context: Path, workflow_version: str, commit: str | None = None) -> ReleaseIdentity:
    return ReleaseIdentity(workflow_version=workflow_version, git_commit=commit or git_commit(),
                           models_sha256=manifest_sha256(context),
                           workflows_sha256=workflows_sha256(context / "workflows"),
                           workflow_renders=tuple(sorted(
                               (str(body.get("version")), render_sha256(body))
                               for body in _workflow_files(context / "workflows").values())))


def parse_push_stream(lines: Iterable[dict[str, Any]], progress: Callable[[str], None] | None = None) -> str:
    """Read every line of a push; raise on an error line; return the digest from the last `aux` line."""
    digest: str | None = None
    for line in lines:
        if not isinstance(line, dict):
            raise PushFailed(f"unexpected push stream line {line!r}")
        error = _stream_error(line)
        if error is not None:
            raise PushFailed(f"push failed: {error}")
        aux = line.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
        elif progress and line.get("status") and not line.get("progressDetail"):
            progress(f"push: {line.get('id', '')} {line['status']}".strip())
    if digest is None or not _DIGEST.match(digest):
        raise PushFailed("the push stream ended without a digest (no final `aux` line); the registry did not "
                         "confirm the image")
    return digest


def _stream_error(line: dict[str, Any]) -> str | None:
    """The failure an engine stream line (push, pull) reports in `error` / `errorDetail`, or None. The docker SDK
    does not raise on these: the line is the failure."""
    if "error" not in line and "errorDetail" not in line:
        return None
    detail = line.get("errorDetail") or {}
    return str(line.get("error") or (detail.get("message") if isinstance(detail, dict) else None) or detail)


def source_sha256(context: Path, dockerfile: str = "Dockerfile") -> str:
    """sha256 of what a build is made from, as the docker SDK sends it (its own helpers pick the files): the
    Dockerfile's path from the context, and its text when it lies outside the context; then every path of the
    context that `.dockerignore` leaves in, in path order, with a file's bytes or a symlink's target."""
    from docker.api.build import process_dockerfile

    root = os.path.abspath(context)
    try:
        _, outside_text = process_dockerfile(dockerfile, root)
        chosen = os.path.relpath(os.path.join(root, dockerfile), root)   # the same file however it is named
        digest = hashlib.sha256()
        _hash_item(digest, chosen.encode(), (outside_text or "").encode())
        for name in sorted(_sent_paths(context, dockerfile)):
            path = context / name
            if path.is_symlink():
                body = b"link:" + os.readlink(path).encode()
            elif path.is_file():
                body = b"file:" + path.read_bytes()
            else:
                body = b"dir:"
            _hash_item(digest, name.encode(), body)
    except OSError as exc:
        raise BuildFailed(f"cannot read {exc.filename or context} to build it ({exc.strerror or exc}); check "
                          "--context and --dockerfile (relative to the context)") from None
    return digest.hexdigest()


def _hash_item(digest: Any, name: bytes, body: bytes) -> None:
    digest.update(b"%d:%s%d:%s" % (len(name), name, len(body), body))


def _sent_paths(context: Path, dockerfile: str) -> set[str]:
    """The paths of `context` the docker SDK sends for a build with `dockerfile` (one outside the context is sent
    under a name of the SDK's choosing, so it counts as the context's `Dockerfile` here)."""
    from docker.api.build import process_dockerfile

    from goldgate.local.image_store import sent_paths

    sent_as, _ = process_dockerfile(dockerfile, os.path.abspath(context))
    return sent_paths(context, sent_as or "Dockerfile")


def check_tracked(context: Path, dockerfile: str = "Dockerfile") -> None:
    """Refuse a build that would send docker a file git does not track (a stray `scratch.py` beside the worker's
    code is copied into its package by `COPY *.py`): the image would hold what no commit holds, under a tag that
    names a commit. A tracked file with uncommitted edits is built as it is; a context outside a git checkout is not
    checked. The local image store applies the same rule (goldgate.local.image_store)."""
    from goldgate.local.image_store import untracked_paths, untracked_refusal

    try:
        stray = untracked_paths(context, _sent_paths(context, dockerfile))
    except OSError as exc:
        raise BuildFailed(f"cannot read {exc.filename or context} to build it ({exc.strerror or exc}); check "
                          "--context and --dockerfile (relative to the context)") from None
    if stray:
        raise BuildFailed(untracked_refusal(context, stray))


def check_node_types(context: Path) -> None:
    """Refuse a build whose custom_nodes.yaml is not valid, and, once that file declares anything (a custom node entry
    or `core_nodes`), a workflow node of a type nobody provides: not a ComfyUI node type goldgate knows (the emulator's
    NODE_TYPES), nor one an entry's `nodes` or `core_nodes` lists. ComfyUI refuses every job of such a workflow
    (`Node '<type>' not found`), and only on the GPU. A file that declares nothing refuses nothing: a checkout from
    before custom_nodes.yaml (its Dockerfile installing nodes by hand) builds as it did, and goldgate cannot list every
    node type of the base image's ComfyUI. A workflow file that does not load is left to the build's own checks. A type
    that nearly matches one the file (or goldgate) knows is named with it: fixing a typo is likelier than a new entry."""
    import difflib

    from goldgate.local.comfyui.backend import NODE_TYPES
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes
    from images.worker.workflows import WorkflowError, load_workflows

    path = context / "custom_nodes.yaml"
    try:
        declared = load_custom_nodes(path)
    except CustomNodesError as exc:
        raise BuildFailed(f"cannot build a worker image from {context}: {exc}; nothing was built") from None
    if not declared.declares_anything:
        return
    from goldgate.local.comfyui.stand_ins import custom_node_types

    refused = custom_node_types(path).refused   # an `emulate:` stand-in the local target would refuse, said now
    if refused:
        raise BuildFailed(f"{next(iter(refused.values()))}; nothing was built")
    try:
        workflows = load_workflows(context / "workflows")
    except WorkflowError:
        return
    known = NODE_TYPES.keys() | set(declared.core_nodes)
    # Where each type the file (or goldgate) knows comes from, for the near miss of a mistyped one.
    listed = {**dict.fromkeys(NODE_TYPES, "a ComfyUI node type goldgate knows"),
              **dict.fromkeys(declared.core_nodes, "listed under core_nodes"),
              **{t: f"listed by entry {e.name}" for e in declared.entries for t in e.nodes}}
    found = []
    for workflow in workflows.values():
        where = workflow.path or context / "workflows" / f"{workflow.id}.json"
        for node_id, node in workflow.graph.items():
            node_type = node.get("class_type")
            if isinstance(node_type, str) and node_type not in known and declared.provider(node_type) is None:
                near = difflib.get_close_matches(node_type, listed, n=1)
                hint = f" (did you mean {near[0]!r}, {listed[near[0]]}?)" if near else ""
                found.append(f"workflow {workflow.id} ({where}) node {node_id} has type {node_type!r}{hint}")
    if found:
        more = f" (and {len(found) - 2} more)" if len(found) > 2 else ""
        # An entry without `nodes` may be the one that has the type: only its `nodes` would tell the build so.
        silent = [e.name for e in declared.entries if not e.nodes]
        unlisted = "".join(f"; entry {name} lists no `nodes`: list the types it provides" for name in silent[:2])
        # Kept short: the CLI cuts an error line over 600 characters in the middle.
        raise BuildFailed(f"{'; '.join(found[:2])}{more}, which no entry of {path} provides: ComfyUI refuses every "
                          "job of it (\"Node '<type>' not found\"); add the custom node that has it to "
                          "custom_nodes.yaml (url, commit, `nodes`), or list it under `core_nodes` if the image's "
                          f"ComfyUI has it{unlisted}; nothing was built")


def check_custom_nodes_installed(context: Path, dockerfile: str = "Dockerfile") -> None:
    """Refuse a docker build whose custom_nodes.yaml lists custom nodes that its Dockerfile never installs (a
    Dockerfile from before custom_nodes.yaml, or one edited by hand): the image would lack them, and every job of a
    workflow using them would fail on the GPU with `Node '<type>' not found`."""
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes

    try:
        entries = load_custom_nodes(context / "custom_nodes.yaml").entries
        path = context / dockerfile
        text = path.read_text(encoding="utf-8", errors="replace") if entries and path.is_file() else None
    except (CustomNodesError, OSError):
        return   # check_node_types and the build itself say what is wrong with either file
    if text is not None and "custom_nodes.py install" not in text:
        raise BuildFailed(f"{context / 'custom_nodes.yaml'} lists {len(entries)} custom node(s) "
                          f"({', '.join(e.name for e in entries[:5])}), but {path} never installs them (no "
                          "`custom_nodes.py install` step): the image would lack them; restore the step from the "
                          "shipped Dockerfile (after the model layers); nothing was built")


def unlocked_custom_nodes(context: Path) -> list[str]:
    """One warning line for each custom node of custom_nodes.yaml whose entry names no `requirements:`: the docker
    build installs its own requirements.txt unpinned, and says so in its log (custom_nodes.py install); the local
    build fetches no node, so it says so here, from the entry alone. A file that does not load warns of nothing:
    check_node_types refuses it."""
    from images.worker.custom_nodes import CustomNodesError, load_custom_nodes, lock_command

    try:
        entries = load_custom_nodes(context / "custom_nodes.yaml").entries
    except (CustomNodesError, OSError):
        return []
    return [f"custom_nodes: {entry.name} installs its own requirements.txt without pins or hashes in the docker "
            "image (whatever the index holds today reaches the image unchecked; `goldgate checklist prod --target "
            f"cloud` fails on it); lock it: {lock_command(entry)}, or say `requirements: none` if it has no "
            "requirements.txt" for entry in entries if not entry.locked]


def check_repo(repo: str) -> None:
    """Refuse a repository name docker would refuse, before any engine or registry is asked."""
    if len(repo) > MAX_REPO_CHARS or not _REPO.match(repo):
        raise BuildFailed(f"{repo[:300]!r} is not an image repository name (e.g. 127.0.0.1:5000/goldgate-worker)")


def check_dockerfile(context: Path, dockerfile: str) -> None:
    """Refuse a Dockerfile that is not there, before any engine is asked."""
    if not (context / dockerfile).is_file():
        raise BuildFailed(f"no Dockerfile at {context / dockerfile}; --dockerfile is relative to --context")


def build_docker(client: Any, context: Path, repo: str, identity: ReleaseIdentity, *,
                 dockerfile: str = "Dockerfile", progress: Callable[[str], None] | None = None) -> BuildResult:
    """Build `context`, refuse a re-pointed tag, push, and return the pushed digest ref. When the tag already
    names an image built from this exact source, return that one without building."""
    import docker.errors  # the SDK is only needed on the docker path

    check_repo(repo)
    check_tracked(context, dockerfile)
    check_node_types(context)
    check_custom_nodes_installed(context, dockerfile)
    tag = identity.tag
    ref = f"{repo}:{tag}"
    source = source_sha256(context, dockerfile)
    labels = {"org.opencontainers.image.revision": identity.git_commit,
              "dev.goldgate.workflow-version": identity.workflow_version,
              "dev.goldgate.models-sha256": identity.models_sha256,
              SOURCE_LABEL: source}
    pushed = _registry_digest(client, ref)
    if pushed is not None:
        if progress:
            progress(f"{ref} is already pushed as {repo}@{pushed}; pulling it to read which source it was built from")
        theirs = _pushed_source(client, f"{repo}@{pushed}")
        if theirs == source:
            if progress:
                progress(f"{ref} was pushed from this exact source as {repo}@{pushed}; taking it (a rebuild would "
                         "be other bytes under the same tag)")
            return BuildResult(f"{repo}@{pushed}", tag, repo, pushed, identity, "docker", reused=True)
        if theirs is not None:   # a build from this source is other bytes: the push would be refused after it
            raise TagConflict(f"{ref} already names {repo}@{pushed} in the registry, which was built from other "
                              f"source than {context} ({'label ' + theirs[:12] if theirs else 'no ' + SOURCE_LABEL} "
                              f"there, {source[:12]} here); tags are immutable: commit your change (a new commit "
                              "gives a new tag) or bump workflow_version; nothing was built")
    if progress:
        progress(f"building {context} as {ref}")
    try:
        image = _build_said(client, context, dockerfile, ref, labels, progress)
    except docker.errors.BuildError as exc:
        raise BuildFailed(f"docker build of {context} failed: {exc.msg}") from None
    except docker.errors.APIError as exc:
        raise BuildFailed(f"docker build of {context} failed: {exc.explanation or exc}") from None
    except _engine_lost() as exc:
        raise BuildFailed(f"docker build of {context} broke off: the connection to the Docker engine was lost "
                          f"({exc}); nothing was pushed: build again") from None
    existing = _registry_digest(client, ref)
    if existing is not None:
        mine = {d.split("@", 1)[1] for d in image.attrs.get("RepoDigests") or [] if d.startswith(repo + "@")}
        if existing not in mine:
            raise TagConflict(f"{ref} already names {repo}@{existing} in the registry, which was built from other "
                              f"source than {context} (or before images carried {SOURCE_LABEL}); tags are "
                              "immutable: commit your change (a new commit gives a new tag) or bump workflow_version")
        if progress:
            progress(f"{ref} already pushed with this exact content")
        return BuildResult(f"{repo}@{existing}", tag, repo, existing, identity, "docker", reused=True)
    if progress:
        progress(f"pushing {ref}")
    try:
        with _no_read_timeout(client.api):
            digest = parse_push_stream(client.api.push(repo, tag=tag, stream=True, decode=True), progress)
    except docker.errors.APIError as exc:
        raise PushFailed(f"push of {ref} failed: {exc.explanation or exc}") from None
    except _engine_lost() as exc:
        raise PushFailed(f"push of {ref} broke off: the connection to the Docker engine was lost ({exc}); the "
                         "registry did not confirm the image and nothing may be deployed from it: build "
                         "again") from None
    return BuildResult(f"{repo}@{digest}", tag, repo, digest, identity, "docker")


def _build_said(client: Any, context: Path, dockerfile: str, ref: str, labels: dict[str, str],
                progress: Callable[[str], None] | None) -> Any:
    """The docker SDK's `images.build`, with each line of the build's output said (`build: ...`) as the engine sends it.
    The SDK's call returns only once the build has ended: a worker build bakes tens of GB of models, and `goldgate build`
    said nothing for the hour it took, nor, when a step failed, what that step had printed (a sha256 refused, pip's
    reason): only the engine's "returned a non-zero code". Its BuildError and image lookup are kept."""
    import docker.errors

    log: list[Any] = []
    image_id = None
    for chunk in client.api.build(path=str(context), dockerfile=dockerfile, tag=ref, labels=labels, rm=True,
                                  pull=False, decode=True):
        log.append(chunk)
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            raise docker.errors.BuildError(chunk["error"], iter(log))
        text = chunk.get("stream")
        if isinstance(text, str):
            # The SDK's own test for the image built (the classic builder's last line).
            match = re.search(r"(^Successfully built |sha256:)([0-9a-f]+)$", text)
            image_id = match.group(2) if match else image_id
            if progress:
                for line in text.splitlines():
                    if line.strip():
                        progress(f"build: {line.rstrip()}")
    if image_id is None:
        raise docker.errors.BuildError(log[-1] if log else "Unknown", iter(log))
    return client.images.get(image_id)


def _pushed_source(client: Any, image: str) -> str | None:
    """The source sha256 label of `image` (repo@digest), "" when it has none (built before images carried it). The
    docker SDK reads labels only from a pulled image, and the pull checks the bytes against the digest; it downloads
    what the rebuild it saves would (the models are most of it). None when the registry no longer has the image (the
    build goes on and the tag check after it decides).
    Any other failure is raised with the engine's words: a rebuild would be refused as "other source" and hide it."""
    import docker.errors

    repo, _, digest = image.partition("@")
    error = None
    try:
        for line in client.api.pull(repo, tag=digest, stream=True, decode=True):
            error = _stream_error(line) if isinstance(line, dict) else None
            if error is not None:
                break
        else:
            return str((client.images.get(image).labels or {}).get(SOURCE_LABEL) or "")
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        error = str(exc.explanation or exc)
    except _engine_lost() as exc:
        error = f"the connection to the Docker engine was lost: {exc}"
    raise BuildFailed(f"cannot pull {image} to check whether it was built from this source ({error}); nothing "
                      "was built: fix the pull's cause and build again")


def _registry_digest(client: Any, ref: str) -> str | None:
    """The manifest digest the registry holds for `ref`, or None if the tag does not exist there."""
    import docker.errors

    try:
        data = client.images.get_registry_data(ref)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc).lower()
        if "not found" in text or "manifest unknown" in text or "no such" in text:
            return None
        raise PushFailed(f"cannot ask the registry about {ref} ({exc.explanation or exc}); refusing to push "
                         "without knowing whether the tag exists") from None
    except _engine_lost() as exc:
        raise PushFailed(f"cannot ask the registry about {ref} (the connection to the Docker engine was lost: "
                         f"{exc}); refusing to push without knowing whether the tag exists") from None
    return str(data.id)


def _engine_lost() -> tuple[type[BaseException], ...]:
    """What the docker SDK raises when the engine's connection is refused, times out or breaks off in the middle of a
    stream: requests' errors, and urllib3's own from a stream the SDK reads raw. Its APIError (an HTTP answer) is a
    requests error too: catch that first."""
    import requests
    import urllib3

    return requests.exceptions.RequestException, urllib3.exceptions.HTTPError


@contextlib.contextmanager
def _no_read_timeout(api: Any) -> Iterator[None]:
    """No read timeout on `api`'s requests for the block. The SDK sends a push with the client's timeout (60 s from
    `docker.from_env()`; its pull and build send none) and the engine is silent while the registry takes in a large
    layer: the read times out and the engine, its client gone, gives the push up."""
    if not hasattr(api, "timeout"):
        yield
        return
    saved, api.timeout = api.timeout, None
    try:
        yield
    finally:
        api.timeout = saved


def build_local(source_dir: Path, home: Path, identity: ReleaseIdentity) -> BuildResult:
    """Snapshot the worker into the local content-addressed image store."""
    check_node_types(source_dir)
    try:
        from goldgate.local.image_store import build_local_image
    except ImportError as exc:
        raise BuildFailed(f"the local image store is not available ({exc})") from None
    image = str(build_local_image(source_dir, home))
    repo, _, digest = image.partition("@")
    if not _DIGEST.match(digest):
        raise BuildFailed(f"the local image store returned {image!r}, not repo@sha256:<hex>")
    # A local snapshot is not pushed under its tag, so nothing stops two different trees (a dirty
    # checkout, a copied context) sharing one; the content digest keeps the release id unique.
    return BuildResult(image, f"{identity.tag}-d{digest.removeprefix('sha256:')[:12]}", repo, digest, identity,
                       "local")
