"""The local, content-addressed image store: `local/worker@sha256:<hex>` names a worker snapshot.

A snapshot is what a Docker build would produce, without Docker: `worker/` (a copy of the worker
package: code, models.yaml, workflows) and `models/` (each manifest file "baked" as a sparse file of
the manifest's size under its loader directory). Same tree -> same digest; any change -> new digest.

`worker/` holds exactly the files docker is sent for a build of the worker: what its `.dockerignore` leaves in (read by
the docker SDK's own matcher, `sent_paths`), the Dockerfile and the `.dockerignore` itself. So an editor's swap, lock or
backup file, a tool's cache, a notes file or a README edit is no new local image, as it is no new docker source label;
a changed .py, workflow, models.yaml or Dockerfile is. The digest is the docker build's source label
(goldgate.release.build.source_sha256) of the same tree: both targets name one source by one hash. Both builds refuse a
file docker would be sent and git does not track (`untracked_paths`): a stray `scratch.py` would be baked into the image
under a release named after a commit without it. A tracked file with uncommitted edits is built as it is.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from goldgate.errors import StateError
from goldgate.files import NotARegularFile, flock_holder, lock_file, make_dirs
from images.worker.manifest import ManifestError, check_consistency, load_manifest
from images.worker.workflows import WorkflowError, load_workflows

REF_PREFIX = "local/worker@sha256:"
_REF = re.compile(r"^local/worker@sha256:([0-9a-f]{64})$")
# A manifest entry whose size is not confirmed still needs a file for loaders to list.
UNPINNED_PLACEHOLDER_BYTES = 1
# A build's staging dir untouched this long is a killed build's (a build takes seconds): removed by the next build.
STALE_BUILD_S = 3600.0
# How long a build waits for another build into the same store (a local build takes seconds) before it gives up.
BUILD_LOCK_WAIT_S = 600.0


class ImageStoreError(StateError):
    """A snapshot cannot be built or a reference does not name one; the message says what to do."""


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of `context/.dockerignore`, read the way the docker SDK reads them for a build."""
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def sent_paths(context: Path, dockerfile: str = "Dockerfile") -> set[str]:
    """Every path (files and folders, relative, `/`-separated) the docker SDK sends for a build of `context`: what its
    `.dockerignore` leaves in, the Dockerfile and the `.dockerignore` itself."""
    from docker.utils.build import exclude_paths

    return set(exclude_paths(os.path.abspath(context), dockerignore_patterns(context), dockerfile=dockerfile))


def untracked_paths(context: Path, names: Iterable[str]) -> list[str]:
    """The files among `names` (relative to `context`) that git does not track: neither committed nor added. None
    of them when `context` is not in a git checkout, or in one that tracks none of its files (a copied context:
    nothing to tell them apart by)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--", "."], cwd=context, capture_output=True,
                             timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    tracked = {name.decode("utf-8", "surrogateescape") for name in out.stdout.split(b"\0") if name}
    if not tracked:
        # A folder git tracks nothing of: a copy unpacked inside another checkout (a tarball in a home or monorepo
        # under git), no worker source of that repository. As outside a checkout, nothing to tell strays apart by.
        return []
    return sorted(name for name in names
                  if name not in tracked and ((context / name).is_file() or (context / name).is_symlink()))


def untracked_refusal(context: Path, names: list[str]) -> str:
    """Why a build with `names` (untracked_paths) is refused, and what to do."""
    shown = ", ".join(str(context / name) for name in names[:5]) + (f" and {len(names) - 5} more" if names[5:] else "")
    them = "it" if len(names) == 1 else "them"
    return (f"{shown}: not tracked by git, and the build would bake {them} into the worker image (its .dockerignore "
            f"sends {them} to the build, and the Dockerfile copies every *.py and workflow into the goldgate_worker "
            f"package) under a release named after a commit without {them}: `git add` what the worker needs, move "
            f"the rest out of {context}; nothing was built")


def _source_files(source_dir: Path) -> list[str]:
    """The snapshot's content: every path (relative, `/`-separated, sorted) docker is sent for a build of
    `source_dir`, regular files and the folders the SDK names. A worker without a `.dockerignore` is refused: docker would be
    sent every file in it (caches, notes, the snapshot's own `__pycache__` once a worker ran it), so nothing would
    say which files are the image."""
    if not (source_dir / ".dockerignore").is_file():
        raise ImageStoreError(f"{source_dir / '.dockerignore'} is missing: it names the files that make the worker "
                              "image (docker is sent only those, and the local snapshot takes the same ones); restore "
                              "it (`git checkout -- images/worker/.dockerignore` in a goldgate checkout); nothing was "
                              "built")
    names = []
    for name in sorted(sent_paths(source_dir)):
        mode = (source_dir / name).lstat().st_mode
        if stat.S_ISLNK(mode):
            raise ImageStoreError(f"{source_dir / name} is a symlink; a worker snapshot holds regular files only: "
                                  "replace it by the file it points to")
        # A named pipe, socket or device (a FIFO where the Dockerfile was) is no content: reading it would wait for
        # ever. Left out of the snapshot and its digest, so the digest of such a tree is not docker's source label.
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            names.append(name)
    return names


def snapshot_digest(source_dir: Path) -> str:
    """The docker build's source label of `source_dir` with its own Dockerfile (goldgate.release.build.source_sha256,
    framed the same way): the Dockerfile's name, then each sent path with its bytes. Kept equal to it by
    tests/local/test_review31_img31_snapshot_is_dockers.py; goldgate.local imports nothing of goldgate.release."""
    h = hashlib.sha256()
    _hash_item(h, b"Dockerfile", b"")
    for name in _source_files(source_dir):
        path = source_dir / name
        _hash_item(h, name.encode(), b"file:" + path.read_bytes() if path.is_file() else b"dir:")
    return h.hexdigest()


def _earlier_snapshot_digest(snapshot: Path) -> str:
    """The digest goldgate gave a snapshot before it took only what docker is sent: sha256 over each file's relative
    path and content's sha256, in sorted order, every file but dotfiles, `~` backups, caches and .pyc."""
    h = hashlib.sha256()
    for path in sorted(snapshot.rglob("*")):
        rel = path.relative_to(snapshot)
        if any(part in ("__pycache__", ".pytest_cache", ".ruff_cache") or part.startswith(".") or part.endswith("~")
               for part in rel.parts):
            continue
        if path.is_symlink():
            raise ImageStoreError(f"{path} is a symlink; a worker snapshot holds regular files only")
        if path.is_file() and path.suffix != ".pyc":
            h.update(f"{rel.as_posix()}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _hash_item(digest: Any, name: bytes, body: bytes) -> None:
    digest.update(b"%d:%s%d:%s" % (len(name), name, len(body), body))


def _check_source(source_dir: Path) -> None:
    if not (source_dir / "handler.py").is_file():
        raise ImageStoreError(f"{source_dir} is not a worker package (no handler.py)")
    try:
        manifest = load_manifest(source_dir / "models.yaml")
        workflows = load_workflows(source_dir / "workflows")
    except (ManifestError, WorkflowError) as exc:
        raise ImageStoreError(f"cannot build a worker image from {source_dir}: {exc}") from None
    report = check_consistency(manifest, workflows)
    if not report.ok:
        raise ImageStoreError(f"cannot build a worker image from {source_dir}: " + "; ".join(report.errors))


def build_local_image(source_dir: Path = Path("images/worker"), home: Path = Path(".goldgate")) -> str:
    """Snapshots the worker package into `<home>/images/<hex>/` and returns `local/worker@sha256:<hex>`. One build
    into a store at a time (`_build_lock`): two at once (two terminals, two CI runs of one build job, an `up` of
    STAGING) each found a cut-short snapshot wanting, and one removed the snapshot the other had just put in place
    and returned, or failed on the files the other removed under it."""
    source_dir = Path(source_dir)
    _check_source(source_dir)
    stray = untracked_paths(source_dir, _source_files(source_dir))
    if stray:
        raise ImageStoreError(untracked_refusal(source_dir, stray))
    digest = snapshot_digest(source_dir)
    images = Path(home) / "images"
    final = images / digest
    if _intact(final, digest):
        # Content-addressed: an existing, unaltered snapshot is this exact tree. Looked at without the lock: a build
        # removes only a snapshot it found altered under the lock, and puts its own in place by one rename.
        return REF_PREFIX + digest
    make_dirs(images)
    with _build_lock(images):
        if _intact(final, digest):  # another build put it in place while this one waited
            return REF_PREFIX + digest
        _remove_stale_builds(images)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=images))
        try:
            _copy_source(source_dir, staging / "worker")
            # The copy is what the reference names: hashed as resolve will hash it. A file saved (or swapped) since
            # the digest above was taken would give a reference whose snapshot holds other bytes, refused at the next
            # deploy as "changed after the build"; and the checks above ran on what the digest names, not on it.
            if snapshot_digest(staging / "worker") != digest:
                raise ImageStoreError(f"a file of {source_dir} changed during the build (saved, added, removed or "
                                      "swapped while it was copied): build again once it is as you want it; "
                                      "nothing was built")
            for rel, size in _baked_models(staging / "worker" / "models.yaml").items():
                target = staging / "models" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as f:
                    f.truncate(size)
            if final.exists() and not _intact(final, digest):
                # An edited or half-removed snapshot under this digest: its content is not what a build makes.
                shutil.rmtree(final)
            try:
                os.rename(staging, final)
            except OSError:
                if not _intact(final, digest):
                    raise ImageStoreError(f"cannot move the snapshot into {final}; remove it and rebuild") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return REF_PREFIX + digest


def _copy_source(source_dir: Path, worker: Path) -> None:
    """Copies the files docker is sent for a build of `source_dir` into `worker`, each folder and file opened without
    following a link (O_NOFOLLOW, relative to its opened folder): one swapped for a link since _source_files refused
    links is not copied from wherever the link points (a key file, another tree), and a FIFO is not waited on."""
    root = os.open(source_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in _source_files(source_dir):
            target = worker / name
            if (source_dir / name).is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = _open_below(root, name)
            except OSError as exc:
                raise ImageStoreError(f"{source_dir / name} changed during the build ({exc.strerror}: removed, or "
                                      "replaced by a link or a folder, while it was copied); a worker snapshot "
                                      "holds regular files only: build again; nothing was built") from None
            with os.fdopen(fd, "rb") as src, target.open("xb") as dst:
                _copy_file(src, dst)
    finally:
        os.close(root)


def _open_below(root: int, name: str) -> int:
    """`name` (relative, `/`-separated) under the folder `root` for reading, following no link on the way; refuses
    (OSError) what is not a regular file."""
    *folders, leaf = name.split("/")
    fd = os.dup(root)
    try:
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        # O_NONBLOCK: a FIFO put there opens at once (and is refused below) instead of waiting for a writer.
        leaf_fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf_fd).st_mode):
        os.close(leaf_fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return leaf_fd


def _copy_file(src: IO[bytes], dst: IO[bytes]) -> None:
    """One file's bytes, from the file opened for it (a seam for the tests: a save while a copy runs)."""
    shutil.copyfileobj(src, dst)


# Python's own caches. Python loads a cached .pyc instead of its source (an "unchecked" one whatever the source holds)
# and the digest names none (docker is sent none): one planted in a snapshot would run code the reference does not
# name. resolve removes any it finds before its check; one it cannot remove (written by a worker run as another user,
# in a read-only store) refuses the snapshot, while a folder emptied of its files holds nothing to load. Local workers
# write none (the fleet sets PYTHONDONTWRITEBYTECODE), so a snapshot usually has none (an earlier goldgate's worker
# wrote them), and resolve, which read-only commands call too (doctor, checklist), then writes nothing. Refusing every
# cache instead would refuse every snapshot such a worker ran.
_BYTECODE_CACHE = "__pycache__"


def _bytecode_caches(worker: Path) -> list[Path]:
    """Every `__pycache__` folder (or link) under `worker`, found without entering them and without writing."""
    found = []
    for top, folders, _files in os.walk(worker):
        if _BYTECODE_CACHE in folders:
            folders.remove(_BYTECODE_CACHE)
            found.append(Path(top) / _BYTECODE_CACHE)
    return found


def _raise(exc: OSError) -> None:
    raise exc


def _loadable(cache: Path) -> bool:
    """Whether Python could load anything from `cache`: it is still there, and is a link or holds a file (or a link)
    anywhere below it. A folder left empty (its files removed, itself not: its parent is read-only) holds nothing."""
    if not os.path.lexists(cache):
        return False
    if cache.is_symlink() or not cache.is_dir():
        return True
    try:
        for top, folders, files in os.walk(cache, onerror=_raise):
            if files or any((Path(top) / folder).is_symlink() for folder in folders):
                return True
    except OSError:
        return True   # not listable: Python may still open a .pyc by its name there, planted or not
    return False


def _drop_bytecode_caches(ref: str, worker: Path) -> None:
    """Removes Python's caches under `worker` (only those there are: none, nothing is written). One that stays loadable
    (a cache a worker run as another user wrote, a read-only store) refuses the snapshot, saying how to remove it."""
    for cache in _bytecode_caches(worker):
        why = "it is still there"
        try:
            if cache.is_symlink() or not cache.is_dir():
                cache.unlink()
            else:
                shutil.rmtree(cache)
        except OSError as exc:
            why = exc.strerror or str(exc)
        if _loadable(cache):
            raise ImageStoreError(f"local worker image {ref}: {cache} holds Python bytecode this user cannot remove "
                                  f"({why}), and a worker would load it instead of the source the reference names: "
                                  f"remove that folder (`rm -r {cache}`, as {_owner(cache)}), then run this "
                                  "again")


def _owner(path: Path) -> str:
    """Who may remove `path`: its owner, by name where the system has one, or root."""
    try:
        uid = path.lstat().st_uid
    except OSError:
        return "its owner or root"
    if uid == 0:
        return "root"
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid}) or root"
    except (ImportError, KeyError):
        return f"uid {uid} or root"


def _strays(snapshot: Path, earlier: bool) -> list[str]:
    """What no build puts in `snapshot` and Python could load ahead of the checked source (caches aside): anything
    beside `worker/` and `models/` (the snapshot's folder is first on a worker's import path, so a `yaml.py` there
    is the `yaml` the worker imports), and in `worker/` any file the digest does not cover (a `logs/__init__.py` or
    `logs.cpython-311-x86_64-linux-gnu.so` is imported instead of `logs.py`; a `.pyc` beside no source is imported
    as that module). An earlier goldgate's snapshot hashes every file but dotfiles, backups and caches: of what it
    leaves out, only a .pyc is importable."""
    found = sorted(entry.name for entry in snapshot.iterdir() if entry.name not in ("worker", "models"))
    worker = snapshot / "worker"
    sent = set() if earlier else set(_source_files(worker))
    for top, folders, files in os.walk(worker):
        if _BYTECODE_CACHE in folders:
            folders.remove(_BYTECODE_CACHE)
        here = Path(top)
        links = [folder for folder in folders if (here / folder).is_symlink()]  # os.walk lists, never enters them
        for name in [*files, *links]:
            rel = (here / name).relative_to(worker).as_posix()
            if (name.endswith(".pyc") if earlier else rel not in sent):
                found.append(f"worker/{rel}")
    return found


@contextlib.contextmanager
def _build_lock(images: Path, wait_s: float | None = None) -> Iterator[None]:
    """Held by the build into `images` in progress, from its first look at the snapshot to its rename: a flock on
    `images/.lock`, which the kernel drops with its holder, so a killed build never wedges the next. A second build
    waits for it, then finds the snapshot built; after `wait_s` (BUILD_LOCK_WAIT_S) it gives up, naming the holder's
    pid."""
    limit = BUILD_LOCK_WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + limit
    lock = images / ".lock"
    while (fd := _lock_file(lock)) is None:
        if time.monotonic() >= deadline:
            holder = flock_holder(lock)
            raise ImageStoreError(f"another build into {images} (pid {holder if holder is not None else 'unknown'}) "
                                  f"has held the image store for over {limit:.0f} s; wait for it to finish and build "
                                  "again")
        time.sleep(0.05)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def _lock_file(lock: Path) -> int | None:
    try:
        return lock_file(lock)
    except NotARegularFile as exc:  # a link too: a build truncates nothing another user points it at
        raise ImageStoreError(f"{lock} is {exc.kind}, not a regular file: goldgate keeps the image "
                              "store's build lock there (and follows no link there); move it out of the way "
                              "and build again") from None


def _remove_stale_builds(images: Path) -> None:
    """Remove what killed builds left: each a copy of the worker and its baked models, whose sizes (GBs each, sparse
    where the file system allows) a copy or backup of the home pays in full. One still being built is left alone."""
    cutoff = time.time() - STALE_BUILD_S
    for path in images.glob(".build-*"):
        with contextlib.suppress(OSError):  # housekeeping: one that cannot go stays
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_mtime < cutoff:
                shutil.rmtree(path)


def is_local_ref(ref: str) -> bool:
    """True when `ref` has the local store's form (it may still name no snapshot: see resolve)."""
    return isinstance(ref, str) and _REF.match(ref) is not None


def resolve(ref: str, home: Path = Path(".goldgate")) -> Path:
    """The snapshot directory a reference names; clear errors for malformed or unknown references."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if not match:
        raise ImageStoreError(f"{ref!r} is not a local worker image reference; expected "
                              f"{REF_PREFIX}<64 lowercase hex> as printed by the local build")
    path = Path(home) / "images" / match.group(1)
    if not (path / "worker" / "handler.py").is_file() or not (path / "models").is_dir():
        raise ImageStoreError(f"no local worker image {ref} under {Path(home) / 'images'}; build it first "
                              f"(or point GOLDGATE_HOME at the state directory that holds it)")
    # A snapshot without its .dockerignore is an earlier goldgate's (it took every file but dotfiles, and hashed them
    # another way): checked the way it was made, so a stack pinned to it before an upgrade of goldgate runs on.
    earlier = not (path / "worker" / ".dockerignore").is_file()
    _drop_bytecode_caches(ref, path / "worker")
    strays = _strays(path, earlier)
    if strays:
        shown = ", ".join(strays[:5]) + (f" and {len(strays) - 5} more" if strays[5:] else "")
        raise ImageStoreError(f"local worker image {ref}: {path} holds {shown}, which no build puts there and a worker "
                              "could load instead of the code its reference names; rebuild it from the worker "
                              "source (goldgate replaces the altered snapshot)")
    actual = _earlier_snapshot_digest(path / "worker") if earlier else snapshot_digest(path / "worker")
    if actual != match.group(1):
        # Running it would run code the digest does not name: what was tested is not what would run.
        raise ImageStoreError(f"local worker image {ref}: the content under {path / 'worker'} was changed after "
                              f"the build (its digest is now sha256:{actual}) and does not match its reference; "
                              "rebuild it from the worker source (goldgate replaces the altered snapshot)")
    return path


def _baked_models(models_yaml: Path) -> dict[str, int]:
    """What a build bakes under `models/`: each manifest file's path there and its size in bytes."""
    return {f"{m.directory}/{m.file}": m.size if m.size is not None else UNPINNED_PLACEHOLDER_BYTES
            for m in load_manifest(models_yaml).models}


def _intact(snapshot: Path, digest: str) -> bool:
    try:
        if not ((snapshot / "worker" / "handler.py").is_file() and (snapshot / "models").is_dir()
                and snapshot_digest(snapshot / "worker") == digest and not _strays(snapshot, earlier=False)):
            return False
        # The digest names the worker package only: a baked model removed or cut short since the build (a worker
        # failing with "No checkpoint models appear to be available") must be rebuilt, not reused, when the runbook
        # says to rebuild.
        models = snapshot / "models"
        found = {p.relative_to(models).as_posix(): p.stat().st_size for p in models.rglob("*") if p.is_file()}
        return found == _baked_models(snapshot / "worker" / "models.yaml")
    except (FileNotFoundError, ManifestError, ImageStoreError):
        # ImageStoreError: a snapshot without its .dockerignore (an earlier goldgate's, or one edited) is rebuilt.
        # Removed while it was read, models.yaml included (load_manifest says so as a ManifestError): another build,
        # holding the lock, is replacing an altered one; this one waits for the lock and looks again.
        return False
