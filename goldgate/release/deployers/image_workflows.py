"""The workflows the API Worker serves beside an image: the ones the image was built with.

The Worker bundles its workflows at each `pulumi up` (infra/worker_bundle.py) from a directory of the machine that
runs it, while a worker runs only the workflows, at the versions, its image bakes. A cloud deploy from a checkout
whose workflows are not the image's (the automatic rollback of a release that changed a workflow's version, run
from that release's commit; a `goldgate rollback` run from main; a STAGING deploy of an older digest) gave clients
workflows the workers refuse, and every such job failed (`workflow version mismatch`, `unknown workflow`), on the
very release the rollback went back to because it worked.

So the cloud deployer hands the program the image's own: the checkout's when their hash is the one the image's
build recorded in the ledger (`workflows_sha256`), else those of the commit it was built from, read from git and
checked against that hash. Neither at hand is a refusal before anything changes. An image the ledger has no such
record of (built by hand, or before builds recorded it) gets the checkout's, as before, and the deploy says so.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from goldgate.errors import GoldgateError
from goldgate.release.build import workflows_sha256
from goldgate.release.ledger import Entry, Ledger

WORKFLOWS_ENV = "GOLDGATE_WORKFLOWS_DIR"    # read by infra/worker_bundle.py (image_workflows_dir)
WORKFLOWS_PATH = "images/worker/workflows"
_GIT_TIMEOUT_S = 60


class WorkflowsUnavailable(GoldgateError):
    """Neither the checkout nor the image's build commit holds the workflows the image was built with."""


@dataclass(frozen=True)
class ImageWorkflows:
    directory: Path | None    # what the program bundles; None: its default, the checkout's
    note: str                 # one line for the deploy's progress


def _builds(home: Path | None, image: str) -> list[Entry]:
    """The image's build entries, oldest first (none without a home)."""
    if home is None:
        return []
    return [e for e in Ledger(home).entries() if e.kind == "build" and e.get("image") == image]


def resolve(project_dir: Path, home: Path | None, image: str, scratch: Path) -> ImageWorkflows:
    """The workflows directory to bundle beside `image`; `scratch` (an empty directory) receives them from git."""
    checkout = project_dir / WORKFLOWS_PATH
    builds = _builds(home, image)
    trusted = [e for e in builds if e.authentic]   # under the ledger key in use
    build = trusted[-1] if trusted else None
    wanted = build.get("workflows_sha256") if build is not None else None
    if not isinstance(wanted, str) or not wanted:
        # Said on the deploy: "records no workflows" sent the operator looking for a build that predates the
        # record, not for the key an untrusted one lacks.
        untrusted = builds[-1].mac_problem() if build is None and builds else None
        why = (f"the ledger records no workflows for {image}" if untrusted is None else
               f"the ledger's build of {image} is not trusted ({untrusted}), so neither are the workflows it records")
        return ImageWorkflows(None, f"{why}: the API Worker serves this checkout's ({WORKFLOWS_PATH})")
    if workflows_sha256(checkout) == wanted:   # named all the same: the program bundles exactly what was hashed
        return ImageWorkflows(checkout, f"the API Worker serves this checkout's workflows, the ones {image} was "
                                        "built with")
    commit = build.get("git_commit") if build is not None else None
    commit = commit if isinstance(commit, str) and commit else None
    where = scratch / "workflows"
    problem = _from_git(project_dir, commit, where) if commit else "the build recorded no commit"
    if problem is None and workflows_sha256(where) == wanted:
        return ImageWorkflows(where, f"the API Worker serves the workflows of commit {commit[:12]}, which {image} "
                                     f"was built from (this checkout's {WORKFLOWS_PATH} differ)")
    if problem is None:
        problem = (f"commit {commit[:12]}'s {WORKFLOWS_PATH} are not the ones the build recorded either (it was "
                   "built from a checkout with uncommitted changes)")
    raise WorkflowsUnavailable(
        f"{image} was built with other workflows than this checkout's {WORKFLOWS_PATH} (sha256 {wanted[:12]}), and "
        f"{problem}: the API Worker would offer workflows its workers refuse. Deploy from the commit the image was "
        f"built from{f' ({commit})' if commit else ''} (`git fetch origin <commit>` if this clone lacks it), or "
        "build and release the image this checkout describes")


def hand_run_problem(project_dir: Path, home: Path, image: str) -> str | None:
    """For a `pulumi up` goldgate did not start (WORKFLOWS_ENV not set at all): why this checkout's workflows may
    not be bundled beside `image`, or None. It only refuses, never picks other workflows, so the build entries are
    taken as the ledger holds them, MAC or not (a Pulumi program holds no ledger key); choosing another commit's
    workflows is `resolve`'s, on goldgate's own deploy, which trusts only authenticated entries."""
    try:
        builds = [e for e in Ledger(home).entries() if e.kind == "build" and e.get("image") == image]
    except (GoldgateError, OSError) as exc:   # OSError: e.g. GOLDGATE_HOME names a file, not a directory
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        return f"the ledger {home / 'ledger.jsonl'} cannot be read ({why}), nor what {image} was built with"
    recorded = [e for e in builds if isinstance(e.get("workflows_sha256"), str) and e.get("workflows_sha256")]
    if not recorded or workflows_sha256(project_dir / WORKFLOWS_PATH) in {e.get("workflows_sha256") for e in recorded}:
        return None
    build = recorded[-1]
    commit = build.get("git_commit") if isinstance(build.get("git_commit"), str) else None
    return (f"{image} was built with other workflows than this checkout's {WORKFLOWS_PATH} (ledger #{build.seq}: sha256 "
            f"{str(build.get('workflows_sha256'))[:12]}{f', commit {commit}' if commit else ''}), and the API Worker "
            "would offer workflows its workers refuse")


def _from_git(project_dir: Path, commit: str, into: Path) -> str | None:
    """Write `commit`'s workflow files into `into`; None, or why not."""
    # `<commit>:./path` is the path from project_dir, which need not be the repository's root (a monorepo holding
    # the project in a subdirectory); --full-tree lists the whole tree named, not only its entries under the
    # directory git runs in. Every `*.json` is taken, dot-files too: the build's hash and the bundle take them all.
    tree = f"{commit}:./{WORKFLOWS_PATH}"
    listed = _git(project_dir, "ls-tree", "--full-tree", "-z", "--name-only", tree)
    if isinstance(listed, str):
        return f"this checkout cannot read commit {commit[:12]}'s {WORKFLOWS_PATH} ({listed})"
    into.mkdir(parents=True, exist_ok=True)
    for raw in listed.split(b"\0"):
        name = raw.decode("utf-8", "surrogateescape")
        if not name.endswith(".json") or "/" in name:
            continue
        body = _git(project_dir, "cat-file", "blob", f"{tree}/{name}")
        if isinstance(body, str):
            return f"this checkout cannot read {WORKFLOWS_PATH}/{name} at commit {commit[:12]} ({body})"
        (into / name).write_bytes(body)
    return None


def _git(project_dir: Path, *args: str) -> bytes | str:
    """git's output, or its last error line."""
    try:
        done = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True, timeout=_GIT_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"git: {exc}"
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:200] if lines else f"git exited {done.returncode}"
    return done.stdout
