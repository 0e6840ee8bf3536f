"""The local platform: bring local stacks up and down, deploy images to them, report their status.

This is the embedded target's counterpart of `pulumi up` plus RunPod's image rollout. Each
stack runs in its own background host process (goldgate.local.stackhost) until `down`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from goldgate import spec as specs
from goldgate.errors import GoldgateError, StateError
from goldgate.local import image_store
from goldgate.local.client_tokens import client_hashes
from goldgate.local.state import (
    API_TOKEN_PREVIOUS,
    RELOAD_SIGNAL,
    SECRET_NAMES,
    WEBHOOK_SECRET_PREVIOUS,
    EmptySecret,
    StackDir,
    changed_code,
    default_home,
    host_started_s,
    open_log,
    remove_stale_temps,
    spec_fingerprint,
    write_failure,
)
from goldgate.migrations import discover as discover_migrations
from goldgate.runpod.control import ControlPlaneClient
from goldgate.runpod.errors import RunPodError
from goldgate.spec import StackSpec

REPO = Path(__file__).resolve().parents[2]
Progress = Callable[[str], None]
MAX_NAMED_JOBS = 20  # `down` names at most this many unsettled jobs
_NAMED_BUSY_JOBS = 2  # a deploy whose rollout busy workers hold names at most this many jobs in progress
FAILED_HOST_EXIT_S = 10.0  # how long `up` lets a host that reported `failed` take to stop on its own
STALE_TEMP_S = 60.0  # a temp file of a write this old is a killed writer's: a live one renames it in milliseconds
SECRET_FILES = (*SECRET_NAMES, WEBHOOK_SECRET_PREVIOUS, API_TOKEN_PREVIOUS)


# Why a PROD's pin names an image no promotion or rollback moved it to (`status`'s pin line, `up`'s note), with the
# pin file's path: a hand edit, not a change that was interrupted.
_PINNED_OUTSIDE = ("no promotion or rollback in the release ledger moved the pin there (it was pinned outside "
                   "goldgate: {} edited by hand, or the ledger lost its entries)")


def _quiet(_: str) -> None:
    pass


class RolloutNotComplete(StateError):
    """A deploy's stack took the image and its service serves it, but the endpoint's newest release did not reach
    every worker in time (a worker of the release before busy with a long job, as a rule), or the rollout could not
    be read: the deploy is applied, its rollout not confirmed. The message says why, from "its rollout"; `rollout`:
    the last counts seen (workers_total, workers_on_latest, percent_on_latest), empty when none were."""

    def __init__(self, message: str, endpoint_id: str | None, rollout: dict[str, int]) -> None:
        super().__init__(message)
        self.endpoint_id = endpoint_id
        self.rollout = rollout


@dataclass(frozen=True)
class StackStatus:
    stack: str
    running: bool
    api_url: str | None
    api_token_file: str
    webhook_secret_file: str
    runpod_api_base: str | None
    runpod_endpoint_base: str | None
    runpod_api_key_file: str
    endpoint_id: str | None
    image: str | None
    workflow_version: str
    logs_dir: str
    db_path: str
    state_dir: str
    workers: list[dict[str, Any]] = field(default_factory=list)
    # Workers that ended on their own in the last WORKER_EXITS_WINDOW_S (newest last): a worker that dies at start
    # (its preflight finds no models) leaves none running and jobs queued, which a bare worker list would hide.
    worker_exits: list[dict[str, Any]] = field(default_factory=list)
    # The stack's section of the stacks file changed since its host started, which still runs the old one. Not
    # told while `code_changed` (another goldgate's host measured its section with another StackSpec).
    spec_changed: bool = False
    # A running stack whose host runs other goldgate code than this checkout holds now (it started before an
    # upgrade: git pull, pip install), which it runs until it restarts: what, and the restart. None when it runs
    # this checkout's code, or is down.
    code_changed: str | None = None
    # A stack that is down without `goldgate down` having stopped it: its host died (killed, the OOM killer, a
    # reboot), or its last start failed. Why, in a sentence; None for a stack that runs or was stopped.
    ended: str | None = None
    # A running stack whose pin names another image than its host serves (`image` is the one it serves): a deploy,
    # promote or rollback moved the pin and ended before the host took it. What happened and what to run.
    pin_not_served: str | None = None
    # The stack's database file is missing, or a new empty file took its place, though the stack has had one
    # (lost_database): why, the rescued copy and backups. A running service answers every write 503 meanwhile.
    database_lost: str | None = None
    # PROD serves (or, when down, is pinned to) a release whose last golden run there, a smoke run as a rule, failed
    # (the release ledger's, as promote and rollback judge it): what, and the rollback that takes PROD off it.
    # None when it did not fail there, for a stack that is no PROD, or when the ledger cannot be read.
    smoke_failed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reloaded:
    """What `goldgate reload` applied to a running stack: the secret files that differ from those its old service read
    (each named with how, never a value; none: nothing changed), the stacks file's API settings that changed and were
    applied (`api.<name>`), the new service's pid, and, when the stack's section changed beyond its API settings (the
    endpoint's scaling, say), that a reload does not apply those (`settings_not_applied`: what does)."""

    stack: str
    changed: list[str]
    settings_applied: list[str]
    service_pid: int | None
    settings_not_applied: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


WORKER_EXITS_WINDOW_S = 900
_LOG_TAIL_BYTES = 256 * 1024
_WORKER_LOG_BYTES = 64 * 1024   # a worker that exits at start writes a few lines: its start and why it ended
# The preflight's own words (images/worker/first_aid.py NO_CHECKPOINTS), and the runbook section that starts from them.
NO_MODELS = "No checkpoint models appear to be available"
NO_MODELS_SECTION = f'docs/RUNBOOK.md, "{NO_MODELS}"'
_EXITS_SHOWN = 5


def _read_regular(path: Path, limit: int, tail: bool) -> bytes:
    """Up to `limit` bytes of a regular file, its end (`tail`) or its start; b"" for anything else (a FIFO in its
    place must not hang `status`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return b""
        if tail:
            f.seek(max(0, info.st_size - limit))
        data = f.read(limit)
    if tail and len(data) == limit:  # the first line is cut
        return data.split(b"\n", 1)[-1]
    return data


def _lines(data: bytes) -> list[dict[str, Any]]:
    out = []
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            out.append(line)
    return out


def _worker_log_facts(logs_dir: Path, worker: Any) -> tuple[str | None, str | None, int | None]:
    """(image, cause, models_present) from the worker's own log: the image every line of it names
    (`worker_image_tag`), "no_models" when its preflight said the runbook's words (its checkpoint loader folder is
    empty), "preflight_failed" when it failed otherwise, and how many model files that preflight found present
    (its `data.models`; None when its line does not say)."""
    if not isinstance(worker, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", worker):
        return None, None, None
    path = logs_dir / f"worker-{worker}.log"
    image = next((str(line["worker_image_tag"]) for line in _lines(_read_regular(path, _WORKER_LOG_BYTES, False))
                  if line.get("worker_image_tag")), None)
    cause = present = None
    for line in _lines(_read_regular(path, _WORKER_LOG_BYTES, True)):
        if line.get("event") == "preflight_failed":
            image = image or (str(line["worker_image_tag"]) if line.get("worker_image_tag") else None)
            cause = "no_models" if NO_MODELS in json.dumps(line) else "preflight_failed"
            models = line["data"].get("models") if isinstance(line.get("data"), dict) else None
            present = len(models) if isinstance(models, list) else None
    return image, cause, present


def _ts(line: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(line["ts"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


def _why_host_ended(log: Path, left: dict[str, Any]) -> str:
    """What a host that ended without `goldgate down` left to read. Its stderr log (appended to by every start) has
    a crash's traceback; a host killed by SIGKILL, the OOM killer or a reboot writes nothing, and "see <log>" sent the
    operator to an empty file: then say that it holds nothing of this run, and why."""
    started = _ts({"ts": left.get("started_at")})
    try:
        info = log.stat()
    except OSError:
        info = None
    if info is not None and info.st_size > 0 and (started is None or info.st_mtime >= started):
        return f"killed, or it crashed: see {log}"
    since = f" since it started at {str(left.get('started_at'))[:40]}" if started is not None else ""
    return (f"killed: nothing was written to {log}{since}, where a crash leaves its traceback; SIGKILL, the OOM "
            "killer or a reboot ends a host without a word")


def _last_redeploy(host_log: Path, image: str) -> tuple[float, str] | None:
    """When the stack's host last began to take `image` (`stack.redeployed`, or `stack.ready` when it started on it
    after taking another: their `data.began_at`, the redeploy's or the host's start; the line's own ts when an older
    host wrote none), from the tail of its log: (time, that ts), or None. Not the line's ts: the image's first workers
    start before it (the endpoint takes the image first), and may already have died. A host that starts again on the
    image it took last (`goldgate down && goldgate up`, a reboot) takes nothing new: the same image fails as before,
    and its exits from before the restart stay its problem (status called them past, as after a redeploy)."""
    last = None
    taken = None  # the image of the newest line that took one
    for line in _lines(_read_regular(host_log, _LOG_TAIL_BYTES, True)):
        if line.get("event") not in ("stack.redeployed", "stack.ready"):
            continue
        took, taken = taken, line.get("worker_image_tag")
        if taken != image or (line.get("event") == "stack.ready" and took == image):
            continue
        data = line.get("data") if isinstance(line.get("data"), dict) else {}
        began = {"ts": data["began_at"]} if isinstance(data.get("began_at"), str) else line
        when = _ts(began)
        last = (when, str(began["ts"])) if when is not None else last
    return last


def recent_worker_exits(emulator_log: Path, now_s: float | None = None,
                        serving: str | None = None) -> list[dict[str, Any]]:
    """The unexpected `worker.exited` events in the tail of the RunPod emulator's log from the last
    WORKER_EXITS_WINDOW_S, newest last: {"worker", "returncode", "ts", "image", "cause", "models_present", "past",
    "past_by", "past_since"} each. `image` is what the worker ran (the exit line's worker_image_tag, its
    `worker.started` line, else its own log; None when none says), `cause` what its log says of the exit
    ("no_models", "preflight_failed" or None) and `models_present` how many model files its preflight found.
    `past` is true for an exit that is no longer the stack's problem, and `past_by` says why: "another_image" (it ran
    another image than `serving`, the one the stack serves now: a rollback away from a broken image), "redeploy" (it
    came before the stack's host last began to take `serving`, the `data.began_at` of its `stack.redeployed` or
    `stack.ready` line (a start on the image it took last takes nothing new: `_last_redeploy`), not the line's ts, which the first workers of `serving` may start and die before: a rebuild
    of the same digest, redeployed, after the runbook's first aid) or "worker_ready" (a later worker of `serving` got
    ready for jobs: it passed the preflight the exit failed); `past_since` is the time that redeploy began or the ts
    of that worker's `worker.ready`. The exits of `serving` after both stay the stack's problem. At most five of each kind:
    current, past of `serving`, past of another image."""
    since = (time.time() if now_s is None else now_s) - WORKER_EXITS_WINDOW_S
    started: dict[Any, str] = {}
    exits: list[dict[str, Any]] = []
    ready: tuple[int, str] | None = None  # the newest `worker.ready` of a worker of `serving`: (its line's place, ts)
    got_ready: set[Any] = set()  # the workers that got ready: a replacement's ready fixes none of their exits
    for place, line in enumerate(_lines(_read_regular(emulator_log, _LOG_TAIL_BYTES, True))):
        data = line.get("data") if isinstance(line.get("data"), dict) else {}
        if line.get("event") == "worker.started" and data.get("image"):
            started[data.get("worker")] = str(data["image"])
        if serving and line.get("event") == "worker.ready" and started.get(data.get("worker")) == serving:
            ready = (place, str(line.get("ts")))
            got_ready.add(data.get("worker"))
        if line.get("event") != "worker.exited" or data.get("expected") is not False:
            continue
        when = _ts(line)
        if when is not None and when >= since:
            exits.append({"worker": data.get("worker"), "returncode": data.get("returncode"), "ts": line["ts"],
                          "image": line.get("worker_image_tag") or started.get(data.get("worker")),
                          "when": when, "place": place})
    redeploy = _last_redeploy(emulator_log.parent / "stackhost.jsonl", serving) if serving else None
    for e in exits:
        logged_image, e["cause"], e["models_present"] = _worker_log_facts(emulator_log.parent, e["worker"])
        e["image"] = e["image"] or logged_image
        when, place = e.pop("when"), e.pop("place")
        e["past_by"] = e["past_since"] = None
        if not (serving and e["image"]):
            pass
        elif e["image"] != serving:
            e["past_by"] = "another_image"
        elif redeploy is not None and when < redeploy[0]:
            e["past_by"], e["past_since"] = "redeploy", redeploy[1]
        # A later worker's ready fixes only the exits of workers that never got ready (the preflight it passed): one
        # that got ready and then died (a crash in a job) is the image's problem still, however many replacements
        # get ready after it. The log's own order: one millisecond may hold both lines.
        elif ready is not None and place < ready[0] and e["worker"] not in got_ready:
            e["past_by"], e["past_since"] = "worker_ready", ready[1]
        e["past"] = e["past_by"] is not None
    kinds: dict[tuple[bool, bool], list[dict[str, Any]]] = {}  # current, past of the image served, of another
    for e in exits:
        kinds.setdefault((e["past"], e["past_by"] == "another_image"), []).append(e)
    kept = [e for kind in kinds.values() for e in kind[-_EXITS_SHOWN:]]
    return [e for e in exits if any(e is k for k in kept)]


def _pid(value: Any) -> int | None:
    """A state file's pid, if it can be one: a hand-edited "123", -1 or true must never reach os.kill
    (-1 signals every process the user may signal; true is pid 1)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else None


def reload_answered(done: Any, count: Any, sent: float) -> bool:
    """Whether state.json's `reload` record (`done`) answers a `goldgate reload` that read `count` there and sent its
    signal at `sent` (time.monotonic()): a reload the host counted since, and one that began after the signal. A
    reload already in hand when the signal came (one sent by hand) read the files before the operator's edit: its
    outcome ("no secret file changed", or applied where the edit is refused) is not this command's, whose own
    comes next. A host that records no `began_monotonic` (of the commit that added reload) is taken at its count."""
    if not isinstance(done, dict) or not isinstance(done.get("count"), int):
        return False
    began = done.get("began_monotonic")
    if isinstance(began, bool) or not isinstance(began, int | float):
        began = None
    if not isinstance(count, int):  # a state.json edited by hand: the start time alone tells
        return began is not None and began >= sent
    if done["count"] <= count:
        return False
    if began is None:
        return True
    # Two reloads since the count was read: the second began once the first had ended, after that read and so
    # after the operator's edit, whatever the clock says.
    return began >= sent or done["count"] >= count + 2


def _cmdline(pid: int) -> list[str] | None:
    """The process's argv, or None where the platform cannot tell (no /proc, no ps). Decoded as this process
    decodes its own paths (os.fsdecode): a home under a non-ASCII name then compares equal to `self.home`
    whatever the locale (LC_ALL=C with PYTHONUTF8=0, a Latin-1 locale), and any process's bytes decode."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return []  # /proc works and the pid has no entry: it is gone
    except OSError:
        return None
    else:
        return [os.fsdecode(part) for part in raw.split(b"\0") if part]
    try:
        out = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, timeout=5,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return os.fsdecode(out.stdout).split()


def _alive(pid: int | None) -> bool:
    if pid is None or _pid(pid) is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        pass
    # So does another's: a host `goldgate up` started is reparented when `up` exits, and where the new parent
    # does not reap (a container whose PID 1 is not an init), its exit leaves a zombie for good; `down` would
    # wait out its whole grace period for it to go.
    return _state_letter(pid) not in ("Z", "X")


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the process's name (state, parent, ...); [] where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces


def _state_letter(pid: int) -> str | None:
    """The process's state (R, S, Z...) from /proc, or None where the platform cannot tell."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _environ(pid: int) -> dict[str, str] | None:
    """The environment a process started with (Linux /proc), or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (os.fsdecode(part).partition("=") for part in raw.split(b"\0") if part)
    return {key: value for key, _, value in pairs}


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else None


def _module_args(argv: list[str], module: str) -> dict[str, str] | None:
    """`python -m <module> --flag value...` (directly or under goldgate.local.lifeline) -> its flags."""
    for i in range(len(argv) - 1):
        if argv[i] == "-m" and argv[i + 1] == module:
            return dict(itertools.pairwise(argv[i + 2:]))
        if argv[i] == "-m" and argv[i + 1] == "goldgate.local.lifeline" and argv[i + 2:i + 3] == [module]:
            return dict(itertools.pairwise(argv[i + 3:]))
    return None


def _same_path(value: str | None, expected: Path) -> bool:
    return value is not None and Path(value).resolve() == expected.resolve()


def _under(value: str | None, root: Path) -> bool:
    return value is not None and Path(value).resolve().is_relative_to(root.resolve())


PROBE_BYTES = 256 * 1024  # what `up` must be able to write to the state dir before it starts a host


# SQLite's unix VFS opens no database whose path, with "-journal" after it, is over 512 bytes: a home whose
# path was over ~480 bytes started its stacks' hosts into "OperationalError: unable to open database file" and
# nothing more (and one over ~440, its dr-drill's restore).
SQLITE_MAX_DB_PATH_BYTES = 504
# The longest database path goldgate makes under a home: a local dr-drill's restore, into its scratch copy.
_LONGEST_DB = "drills/{stack}/scratch-20261130T084136.009870Z.sqlite.restoring"


def _path_too_long(stack: str, d: StackDir) -> str | None:
    """Why the stack's databases could not be opened under this home (its path is too long), or None."""
    longest = d.home / _LONGEST_DB.format(stack=stack)
    size = len(os.fsencode(longest))
    if size <= SQLITE_MAX_DB_PATH_BYTES:
        return None
    shorter = size - SQLITE_MAX_DB_PATH_BYTES
    return (f"cannot start stack {stack}: SQLite opens no database whose path is over "
            f"{SQLITE_MAX_DB_PATH_BYTES} bytes, and this state dir's are up to {size} ({d.db_path} and its "
            f"dr-drill's restore); set GOLDGATE_HOME to a directory whose path is at least {shorter} bytes "
            "shorter")


def _check_writable(stack: str, d: StackDir) -> None:
    """A full or read-only state dir is refused up front in one sentence, not found out by a host whose own
    log cannot be written (so it could not say why it died); so is one whose path is too long for SQLite."""
    too_long = _path_too_long(stack, d)
    if too_long is not None:
        raise StateError(too_long)
    problem = _write_probe(d)
    if problem is not None:
        raise StateError(f"cannot start stack {stack}: its state dir {d.root} is not writable "
                         f"({problem}); free some space or make it writable, then run "
                         f"`goldgate up {stack}` again")


def _read_only_home(stack: str, d: StackDir) -> str:
    """Why `up` does not start `stack` from a state dir this user cannot write, and what that means."""
    try:
        read_only = bool(os.statvfs(d.root).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    why = "on a read-only file system" if read_only else "not writable by this user"
    return (f"cannot start stack {stack}: its state dir {d.root} is {why}. A stack keeps its state, database and logs "
            f"there, so it starts only from a writable home; one that runs is read from here as it is (`goldgate "
            f"status {stack}`, and `goldgate up {stack}` says it is up). Make the home writable, or set --home or "
            f"GOLDGATE_HOME to a writable one, then run `goldgate up {stack}` again")


def _write_probe(d: StackDir) -> str | None:
    """Why PROBE_BYTES cannot be written (and synced) in the stack's dir ("No space left on device"), or None."""
    probe = d.root / ".write-probe"
    try:
        probe.unlink(missing_ok=True)  # goldgate's own scratch name: whatever is there (a FIFO would block) goes
        with open(probe, "xb") as f:
            f.write(bytes(PROBE_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return str(exc.strerror or exc)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


# Environment variables named as credentials (as the RunPod emulator and the worker's start.sh read names).
_CREDENTIAL_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSPHRASE|CREDENTIAL|KEY", re.IGNORECASE)


def _tables(path: Path) -> set[str] | None:
    """The tables of the SQLite file at `path`; None when it cannot be read."""
    # Imported here: goldgate.ops imports this package.
    from goldgate.ops.fingerprint import connect_read_only

    try:
        with contextlib.closing(connect_read_only(path, timeout=5)) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    except sqlite3.Error:
        return None


def host_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a stack host (and the service it starts) runs with: `goldgate up`'s, without the credentials
    an operator's shell holds for the clouds (CLOUDFLARE_API_TOKEN, PULUMI_CONFIG_PASSPHRASE, RUNPOD_API_KEY, AWS
    keys...). Every secret a local stack uses is in its `secrets/` dir; the host lives for days, and any process of
    the same user could read its /proc/<pid>/environ all that time."""
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items() if not _CREDENTIAL_NAME.search(name)}


class LocalPlatform:
    """Local stacks under one state home ($GOLDGATE_HOME or ./.goldgate)."""

    def __init__(self, home: Path | None = None, stacks_file: Path = specs.LOCAL_STACKS_FILE) -> None:
        self.home = (home or default_home()).resolve()
        self.stacks_file = stacks_file

    def _dir(self, stack: str) -> StackDir:
        # An unknown stack is refused with the stacks it knows; the role picks the advice for a damaged pin.
        return StackDir(self.home, stack, role=specs.load_local(stack, self.stacks_file).role)

    def _stoppable_dir(self, stack: str) -> StackDir:
        """The stack's dir for `down`, which needs nothing from the stack's section of the stacks file: a stack whose
        section was removed, renamed or edited into one that no longer validates while it ran is stopped all the
        same, when this home has its dir. Any other name is refused as `_dir` refuses it."""
        d = StackDir(self.home, stack)
        # The spec's rule for a stack name keeps the name one plain directory under stacks/.
        if specs.is_stack_name(stack) and d.root.is_dir():
            return d
        return self._dir(stack)

    def spec(self, stack: str) -> StackSpec:
        base = specs.load_local(stack, self.stacks_file)
        image = StackDir(self.home, stack, role=base.role).pinned_image()
        return base.with_image(image) if image else base

    def pinned_image(self, stack: str) -> str | None:
        return self._dir(stack).pinned_image()

    def api_token(self, stack: str) -> str:
        return self._dir(stack).secret("api_token")

    def webhook_secret(self, stack: str) -> str:
        return self._dir(stack).secret("webhook_secret")

    def runpod_api_key(self, stack: str) -> str:
        return self._dir(stack).secret("runpod_api_key")

    def db_path(self, stack: str) -> Path:
        return self._dir(stack).db_path

    def _missing_migrations(self, stack: str) -> list[str]:
        """The migrations of this checkout the stack's database lacks: it was created by an older goldgate and no
        host of this one has started on it since. None missing when there is no database yet."""
        # Imported here: goldgate.ops imports this package.
        from goldgate.ops.fingerprint import connect_read_only

        path = self._dir(stack).db_path
        if not path.is_file():
            return []  # none yet (a lost one is `lost_database`'s)
        tables = _tables(path)
        if tables is None:
            return []  # not a database goldgate can read: the command that opens it says so
        applied: set[str] = set()
        if "d1_migrations" in tables:
            try:
                with contextlib.closing(connect_read_only(path, timeout=5)) as db:
                    applied = {row[0] for row in db.execute("SELECT name FROM d1_migrations")}
            except sqlite3.Error:
                return []
        return [m.name for m in discover_migrations() if m.name not in applied]

    def lost_database(self, stack: str) -> str | None:
        """Why the stack's database is lost, or None: its file is missing, or a new one without a table took its
        place, though the stack has had a database (StackDir.ran_before). Started on anew, every job it held would be
        gone without a word; a first start (no database ever) is no loss."""
        d = self._dir(stack)
        path = d.db_path
        if path.is_file() and _tables(path) != set():
            return None
        if not d.ran_before():
            return None
        what = ("is missing" if not path.is_file()
                else "has no tables (a new, empty file took the place of the one that was deleted)")
        rescued = d.rescued_copies()
        copies = (f"the copy the service saved of the deleted database: {', '.join(map(str, rescued))} (restore from "
                  "the newest)" if rescued else "no copy the service saved of it (db.sqlite.rescued-*) is beside it")
        running = ("; its running service still has the deleted file open and saves a copy of it at its first "
                   "refused write (`database.gone`): keep it running, and send it one write if no client does (any "
                   "`POST /api/queue/create` with the API token: it answers 503 and saves the copy), or copy the "
                   "open file from /proc/<service pid>/fd (the doc's fallback)" if self._state(stack)
                   and not rescued else "")
        return (f"{stack}'s database {path} {what}, though the stack has run before: refusing to start its service "
                f"on a new, empty database (every job would be lost){running}; {copies}; its backups: `goldgate "
                f"dr-restore {stack} --list`; docs/D1_DISASTER_RECOVERY.md, \"The database file was deleted\". To "
                f"start it on a new, empty database all the same: `touch {d.new_database_file}`, then `goldgate up "
                f"{stack}`")

    def require_migrated(self, stack: str) -> Path:
        """The stack's database path, refused while it is lost (`lost_database`) or migrations of this checkout are
        missing from it."""
        lost = self.lost_database(stack)
        if lost is not None:
            raise StateError(lost)
        missing = self._missing_migrations(stack)
        if not missing:
            return self._dir(stack).db_path
        path = self._dir(stack).db_path
        if "d1_migrations" not in (_tables(path) or set()):   # no goldgate ever migrated it: it predates nothing
            raise StateError(f"{stack}'s database {path} is not a migrated goldgate database (no d1_migrations "
                             f"table): `goldgate up {stack}` creates and migrates the stack's own")
        lacks = f"{stack}'s database predates this goldgate (migrations not applied: {', '.join(missing)})"
        if self.host_pid(stack) is not None:
            raise StateError(f"{lacks}: its running host was started by an older goldgate; restart the stack to "
                             f"apply them: `goldgate down {stack} && goldgate up {stack}`")
        raise StateError(f"{lacks}; `goldgate up {stack}` applies them, then run this command again")

    def _host_pid(self, stack: str, state: Any) -> int | None:
        """The pid in a state file if it is still this stack's host process; None for a dead host, a
        malformed pid, or a pid the OS has since given to an unrelated process (which must not be signalled)."""
        pid = _pid(state.get("pid")) if isinstance(state, dict) else None
        if pid is None or not _alive(pid):
            return None
        argv = _cmdline(pid)
        if argv is None:
            return pid  # cannot tell on this platform: trust the state file
        if "goldgate.local.stackhost" not in argv:
            return None
        flags = dict(itertools.pairwise(argv))
        home = flags.get("--home")
        if flags.get("--stack") != stack or home is None or Path(home).resolve() != self.home:
            return None
        return pid

    def _is_host(self, stack: str, pid: int) -> bool:
        argv = _cmdline(pid) or []
        flags = _module_args(argv, "goldgate.local.stackhost") or {}
        return flags.get("--stack") == stack and _same_path(flags.get("--home"), self.home)

    def _belongs_to(self, stack: str, pid: int) -> bool:
        """Proof that `pid` is this stack's service or worker (or a worker's SDK child) in this home: the
        service's config path names home and stack; a worker's snapshot is under this home's images and its
        environment names the stack (the fleet sets STACK). Anything short of that is left alone."""
        argv = _cmdline(pid)
        if not argv:
            return False
        service = _module_args(argv, "service.local_server")
        if service is not None:
            return _same_path(service.get("--config"), self.home / "stacks" / stack / "service.json")
        worker = _module_args(argv, "goldgate.local.worker_process")
        if worker is not None and _under(worker.get("--snapshot"), self.home / "images"):
            return (_environ(pid) or {}).get("STACK") == stack
        return False

    def leftovers(self, stack: str) -> list[int]:
        """Processes of this stack whose host is gone: a host that died before its children watched a lifeline
        (goldgate.local.lifeline) left its service and workers running. Linux only (/proc); elsewhere none are
        found, so nothing is signalled on a guess. A process with a live host of this stack among its
        ancestors is that host's and is never listed."""
        proc = Path("/proc")
        if not (proc / "self").is_dir():
            return []
        found = []
        for entry in proc.iterdir():
            if not entry.name.isdigit() or int(entry.name) in (os.getpid(), 1):
                continue
            pid = int(entry.name)
            if self._belongs_to(stack, pid) and not self._has_live_host(stack, pid):
                found.append(pid)
        return sorted(found)

    def _has_live_host(self, stack: str, pid: int) -> bool:
        seen = set()
        parent = _parent(pid)
        while parent is not None and parent > 1 and parent not in seen:
            if self._is_host(stack, parent):
                return True
            seen.add(parent)
            parent = _parent(parent)
        return False

    def _stop_leftovers(self, stack: str, progress: Progress, timeout_s: float = 10.0) -> None:
        pids = self.leftovers(stack)
        if not pids:
            return
        progress(f"{stack}: stopping {len(pids)} process(es) a dead host left running: {pids}")
        for pid in pids:
            self._signal_if_ours(stack, pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        # "Still ours" rather than "alive": an orphan's zombie (no command line) holds nothing and is not ours to reap.
        while time.monotonic() < deadline and any(self._belongs_to(stack, pid) for pid in pids):
            time.sleep(0.1)
        for pid in pids:
            self._signal_if_ours(stack, pid, signal.SIGKILL)

    def _signal_if_ours(self, stack: str, pid: int, sig: int) -> None:
        # Checked again right before each signal: the pid may have exited and been given to another process.
        if not self._belongs_to(stack, pid) or self._has_live_host(stack, pid):
            return
        try:
            if sig == signal.SIGKILL and os.getpgid(pid) == pid:
                os.killpg(pid, sig)  # a worker leads its session: this takes its SDK heartbeat child too
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _state(self, stack: str) -> dict[str, Any] | None:
        state = self._dir(stack).read_state()
        if not isinstance(state, dict) or state.get("status") != "ready" or self._host_pid(stack, state) is None:
            return None
        return state

    # -- lifecycle ------------------------------------------------------------------------------
    def up(self, stack: str, progress: Progress = _quiet, timeout_s: float = 120.0,
           result_sweep_s: float | None = None) -> StackStatus:
        """Start the stack in the background; a running stack is left as it is. Two `up`s at once: the second
        waits for the first and then finds the stack up. `result_sweep_s`: how often the host expires results
        (its default, hourly, unless given)."""
        d = self._dir(stack)
        with d.starting(timeout_s, lambda holder: progress(f"{stack}: waiting for {holder} to finish")) as ours:
            if not ours:
                raise StateError(f"another `goldgate up`, `down` or `dr-restore` of {stack} has held the stack for over "
                                 f"{timeout_s:.0f} s; wait for it and run `goldgate status {stack}`, or "
                                 f"`goldgate down {stack}` to stop it")
            return self._up(stack, d, progress, timeout_s, result_sweep_s)

    def _up(self, stack: str, d: StackDir, progress: Progress, timeout_s: float,
            result_sweep_s: float | None) -> StackStatus:
        if self._state(stack):
            return self._already_up(stack, progress)
        self._refuse_start(stack, d)
        self._clear_last_run(stack, d, progress)
        return self._start_host(stack, d, progress, timeout_s, result_sweep_s)

    def _already_up(self, stack: str, progress: Progress) -> StackStatus:
        """A running stack is left as it is; `up` says what a restart of it would change."""
        # A host applies the migrations when it starts: one started by an older goldgate keeps serving the
        # older schema (and code) until it is restarted, so "already up" would hide the upgrade.
        self.require_migrated(stack)
        progress(f"{stack}: already up")
        code_changed = self.code_changed(stack)
        if code_changed is not None:  # the restart it names applies a changed stacks file too
            progress(f"{stack}: {code_changed}")
        elif self.spec_changed(stack):
            progress(self.spec_changed_advice(stack))
        if self.secrets_changed(stack):
            progress(self.secrets_changed_advice(stack))
        status = self.status(stack)
        if status.pin_not_served:
            progress(f"{stack}: {status.pin_not_served}")
        return status

    def _refuse_start(self, stack: str, d: StackDir) -> None:
        starting = self._host_pid(stack, {"pid": d.host_lock_pid()})
        if starting is not None:
            # A host is alive but not ready: another `up` is starting it (or it is stopping). A second host
            # would share the database and overwrite its state file.
            raise StateError(f"stack {stack} is already starting (host pid {starting}); wait for it and run "
                             f"`goldgate status {stack}`, or `goldgate down {stack}` to stop it")
        if not os.access(d.root, os.W_OK):
            # A home this user cannot write (`starting` took its lock read-only): a running stack was found up above;
            # starting one writes its state, database and logs there, so it is refused now, before any step of it.
            raise StateError(_read_only_home(stack, d))

    def _clear_last_run(self, stack: str, d: StackDir, progress: Progress) -> None:
        """Before a new host starts: what the last one left (its processes, temp files, state) is stopped or
        removed, and what it left unsettled is said."""
        self._refuse_lost_database(stack, d, progress)   # before a first image is built for it
        self._check_pin(stack, d)
        self._drop_unreadable_state(stack, d, progress)
        left = d.read_state()
        leftover = self._host_pid(stack, left)
        if leftover is not None:
            self._stop_pid(leftover)
        self._stop_leftovers(stack, progress)
        self._remove_stale_temps(d)
        d.ensure()
        _check_writable(stack, d)
        d.prune_worker_logs()
        d.check_logs()
        # No host runs now, so no RunPod does: a job still waiting for its webhook lost it when the last one
        # stopped (a crash says nothing at the time; `down` said so already, and this repeats until settled).
        self._report_unsettled(stack, d, progress, "of the stack's last run never settled",
                               "Once it is up, ")
        self._note_pin_never_served(stack, d, left, progress)
        d.state_file.unlink(missing_ok=True)

    def _start_host(self, stack: str, d: StackDir, progress: Progress, timeout_s: float,
                    result_sweep_s: float | None) -> StackStatus:
        progress(f"{stack}: starting object store, RunPod emulator and API service")
        log = open_log(d.logs_dir / "stackhost.stderr.log", f"goldgate up {stack}")
        log_size = log.tell()
        sweep = [] if result_sweep_s is None else ["--result-sweep-s", repr(float(result_sweep_s))]
        proc = subprocess.Popen(
            [sys.executable, "-m", "goldgate.local.stackhost", "--stack", stack, "--home", str(self.home),
             "--stacks-file", str(self.stacks_file), *sweep],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env=host_environment(),
        )
        try:
            log.close()  # the host has its own copy
            d.note_starting_host(proc.pid)
            return self._wait_ready(stack, d, proc, log_size, progress, timeout_s)
        except KeyboardInterrupt:
            # Ctrl-C of `up` while it waits: the host runs in its own session (the terminal's SIGINT does not
            # reach it), so it would come up behind an operator who gave up on it. It is stopped as a timeout
            # stops it; a host that already exited is not signalled (its pid may be another process's now).
            if proc.poll() is None:
                progress(f"{stack}: interrupted; stopping the host it was starting (pid {proc.pid})")
                self._stop_pid(proc.pid)
            raise

    def _refuse_lost_database(self, stack: str, d: StackDir, progress: Progress) -> None:
        """A stack whose database was lost is not started on a new, empty one unless asked by hand (the file
        StackDir.new_database_file, which this removes)."""
        lost = self.lost_database(stack)
        if lost is None:
            # Left from a request the database never needed: kept, it would let the next loss start anew unasked
            if d.new_database_file.exists():
                d.new_database_file.unlink()
                progress(f"{stack}: removed {d.new_database_file}: its database is there, so it is not started anew "
                         "(the file asks for that only while the database is lost)")
            return
        if not d.new_database_file.exists():
            raise StateError(lost)
        d.new_database_file.unlink()
        progress(f"{stack}: starting on a new, empty database, as {d.new_database_file} asked: the jobs of the lost "
                 "one are not in it")

    @staticmethod
    def _drop_unreadable_state(stack: str, d: StackDir, progress: Progress) -> None:
        """An empty state.json is a dead host's leftover (a runtime record, no live host shows one): said once, by
        the `up` or `down` that removes it, and ignored. Before, it blocked both until removed by hand."""
        why = d.unreadable_state()
        if why is None:
            return
        progress(f"{stack}: ignored its state file {d.state_file} ({why}): a host that ended while it was written "
                 "(killed, or a power cut) left it; removed")
        with contextlib.suppress(OSError):
            d.state_file.unlink()

    @staticmethod
    def _remove_stale_temps(d: StackDir) -> None:
        """The temp files of a state, pin or secret write whose writer was killed before its rename (SIGKILL, a
        power cut): no host runs now, and none of them is younger than a minute (a deploy's or `up`'s in hand)."""
        remove_stale_temps(d.root, ("state.json", "pin.json"), STALE_TEMP_S)
        remove_stale_temps(d.secrets_dir, SECRET_FILES, STALE_TEMP_S)

    def _note_pin_never_served(self, stack: str, d: StackDir, left: Any, progress: Progress) -> None:
        """Said by an `up` that starts a stack whose last host served another image than the pin: a deploy (promote,
        rollback) was interrupted after it moved the pin, or the host died while it redeployed. The stack now starts
        on an image it never served, which on PROD is one no smoke run verified there. On PROD the release ledger tells
        a pin no promotion or rollback moved there (pin.json edited by hand) from one cut short, as `status`'s pin
        line does: "was interrupted" sent the operator after a command nobody ran."""
        # "stopped": a host a signal stopped records the image it served too (StackHost.record_stop)
        if not isinstance(left, dict) or left.get("status") not in ("ready", "stopped") or "image" not in left:
            return
        pinned, served = d.pinned_image(), left.get("image")
        if pinned is None or pinned == served:
            return
        if self._role_or_none(stack) == "prod" and self._pinned_by_hand(stack, pinned):
            progress(f"{stack}: starting on its pin {pinned}, which its last host never served (it served "
                     f"{served or 'no image'}): {_PINNED_OUTSIDE.format(d.pin_file)}; `goldgate status {stack}` says "
                     "whether a promotion or rollback verified it there, and `goldgate history` shows the last "
                     "recorded change")
            return
        progress(f"{stack}: starting on its pin {pinned}, which its last host never served (it served "
                 f"{served or 'no image'}): a deploy, promote or rollback that moved the pin was interrupted, or the "
                 "host died while it redeployed (recorded nowhere: `goldgate history` shows the last recorded change"
                 + ("" if self._role_or_none(stack) == "prod" else
                    f"; `goldgate deploy {stack} --image {pinned}` records it, then `goldgate golden {stack}`") + ")")

    def _pinned_by_hand(self, stack: str, pinned: str) -> bool:
        """Whether no promotion or rollback in the release ledger moved `stack`'s pin to `pinned` (the ledger's last
        change of it does not account for it): pinned outside goldgate. False when the ledger cannot be read."""
        from goldgate.release.history import pin_accounted_for  # only a PROD's pin reads the ledger
        from goldgate.release.ledger import last_prod_change

        try:
            return not pin_accounted_for(last_prod_change(self.home, stack), pinned)
        except (OSError, GoldgateError):
            return False

    @staticmethod
    def _check_pin(stack: str, d: StackDir) -> None:
        """A pin no local worker can run (a registry image an older goldgate let `deploy` pin, a hand edit) is
        refused before a host starts: the stack came up, and every job then stayed queued while each worker
        failed to start."""
        pin = d.read_pin()
        image = pin.get("image") if isinstance(pin, dict) else None
        if image is None or image_store.is_local_ref(image):
            return
        shown = repr(image) if isinstance(image, str) else json.dumps(image)
        raise StateError(f"stack {stack} is pinned to {shown[:120]}, no local snapshot ({image_store.REF_PREFIX}"
                         "<64 hex>): its workers could not start it and every job would stay queued; remove "
                         f"{d.pin_file} and run `goldgate up {stack}` again (STAGING then takes the working tree's "
                         "image, PROD one by `goldgate promote` or `goldgate rollback --to <release>`)")

    def _wait_ready(self, stack: str, d: StackDir, proc: subprocess.Popen, log_size: int, progress: Progress,
                    timeout_s: float) -> StackStatus:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = d.read_state()
            if isinstance(state, dict) and state.get("status") == "failed":
                try:
                    proc.wait(FAILED_HOST_EXIT_S)
                except subprocess.TimeoutExpired:  # its shutdown hangs (a worker that will not stop): it is stopped
                    self._stop_pid(proc.pid)
                raise StateError(f"stack {stack} failed to start: {state.get('error')} "
                                 f"(logs: {d.logs_dir})")
            if isinstance(state, dict) and state.get("status") == "ready":
                progress(f"{stack}: up at {state['api_url']}")
                return self.status(stack)
            if proc.poll() is not None:
                if proc.returncode in (0, -signal.SIGTERM):
                    raise StateError(f"stack {stack} was stopped before it was ready (by `goldgate down {stack}`?); "
                                     f"run `goldgate up {stack}` again to start it")
                host_log = d.logs_dir / "stackhost.stderr.log"
                said = host_log.stat().st_size > log_size if host_log.exists() else False
                raise StateError(f"stack {stack} host exited with code {proc.returncode} " +
                                 (f"(see {host_log})" if said else
                                  f"and wrote nothing to {host_log}: check that the state dir {d.root} is "
                                  "writable and has free space"))
            time.sleep(0.1)
        self._stop_pid(proc.pid)
        raise StateError(f"stack {stack} did not come up within {timeout_s:.0f} s (logs: {d.logs_dir})")

    def _stop_pid(self, pid: int, timeout_s: float = 30.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # the host leads its session: this takes the service too
            except ProcessLookupError:
                pass

    def host_pid(self, stack: str) -> int | None:
        """The stack's live host process: ready, failed-but-alive, or still starting (it takes the host lock
        before it opens the database; before that, the `up` that started it names it in the up lock)."""
        return self._live_host(stack, self._dir(stack))

    def host_started_s(self, stack: str) -> float | None:
        """When the running stack's host started (its state.json's `started_at`, seconds since the epoch): a job
        created before then went to an earlier host's RunPod, which ended with that host. None when the stack is down
        or its host, started by an older goldgate, did not record it."""
        return host_started_s(self._state(stack))

    def host_ended(self, stack: str) -> bool:
        """Whether the stack is down after a host of this home ran it (it recorded the database: StackDir.ran_before):
        no RunPod runs for it then, so no job of it still queued or in progress can be running, nor end by a
        webhook. False while a host runs or starts, and for a stack no host here ever ran."""
        if not specs.is_stack_name(stack):
            return False
        d = StackDir(self.home, stack)
        return d.ran_before() and self._live_host(stack, d) is None

    def running_host(self, stack: str) -> int | None:
        """The live host of a stack this home has a dir for, whether or not the stacks file still names it (its
        section removed or renamed while it ran); None for a name that is no stack of this home."""
        if not specs.is_stack_name(stack) or not StackDir(self.home, stack).root.is_dir():
            return None
        return self._live_host(stack, StackDir(self.home, stack))

    def _live_host(self, stack: str, d: StackDir) -> int | None:
        found = self._host_pid(stack, d.read_state()) or self._host_pid(stack, {"pid": d.host_lock_pid()})
        if found is not None:
            return found
        # The note outlives an `up` that was killed: trusted only where the pid's command line proves it a host.
        noted = _pid(d.starting_host_pid())
        return noted if noted is not None and _alive(noted) and self._is_host(stack, noted) else None

    def down(self, stack: str, progress: Progress = _quiet) -> None:
        d = self._stoppable_dir(stack)
        # An `up` run while the stack stops waits, then starts it anew, rather than answering "already up" from
        # a host that is stopping.
        with d.stopping():
            self._down(stack, d, progress)

    def _down(self, stack: str, d: StackDir, progress: Progress) -> None:
        pid = self._live_host(stack, d)
        if pid is not None:  # the host is stopped whatever its state
            progress(f"{stack}: stopping")
            self._stop_pid(pid)
        self._stop_leftovers(stack, progress)
        if pid is None:
            self._drop_unreadable_state(stack, d, progress)
        d.state_file.unlink(missing_ok=True)
        if self._live_host(stack, d) is None:
            self._remove_stale_temps(d)
        if pid is not None:
            self._report_unsettled(stack, d, progress, "were still queued or running",
                                   f"After `goldgate up {stack}`, ")

    def _report_unsettled(self, stack: str, d: StackDir, progress: Progress, what: str, when: str) -> None:
        """Jobs RunPod took that had not settled when the stack stopped (down, or a host that died): the local
        RunPod's queue does not survive its host, so no webhook will ever come for them. Named, so the operator
        can settle each."""
        unsettled = d.unsettled_jobs()
        if unsettled is None:
            return  # the report is advice; the stop itself succeeded
        # `unsent`: RunPod never took them, or their RunPod id was not recorded
        ids, unsent = unsettled
        # Once the stack is up again, `goldgate stuck` lists every one of them (created before its host started), as it
        # does while the stack is down (no RunPod runs then).
        lists = f"`goldgate stuck {stack}` lists them, with what recover needs"
        lost = "the local RunPod's queue does not survive its stack's stop, so no webhook will come for them"
        if ids:
            more = len(ids) - MAX_NAMED_JOBS
            shown = " ".join(ids[:MAX_NAMED_JOBS]) + (f" (and {more} more: `goldgate stuck {stack}` lists them)"
                                                     if more > 0 else "")
            progress(f"{stack}: {len(ids)} job(s) {what}; {lost}. {when}`goldgate recover JOB --stack {stack}` "
                     f"settles each: {shown}" + (f"; and {unsent} more with no RunPod id recorded: {lists}"
                                                if unsent else ""))
        elif unsent:
            progress(f"{stack}: {unsent} job(s) with no RunPod id recorded {what}; {lost}. {when}{lists}")

    def status(self, stack: str) -> StackStatus:
        d = self._dir(stack)
        state = self._state(stack) or {}
        workers: list[dict[str, Any]] = []
        if state:
            try:
                client = ControlPlaneClient(api_key=d.secret("runpod_api_key"), base_url=state["runpod_api_base"].removesuffix("/v2"))
                with client:
                    workers = [asdict(w) for w in client.list_workers(state["endpoint_id"]).workers]
            except Exception:  # noqa: BLE001 -- status must answer even when the emulator is busy; workers are best effort
                workers = []
        code_changed = self._code_changed(stack, state)
        return StackStatus(
            stack=stack, running=bool(state), api_url=state.get("api_url"),
            api_token_file=str(d.secret_file("api_token")),
            webhook_secret_file=str(d.secret_file("webhook_secret")),
            runpod_api_base=state.get("runpod_api_base"), runpod_endpoint_base=state.get("runpod_endpoint_base"),
            runpod_api_key_file=str(d.secret_file("runpod_api_key")), endpoint_id=state.get("endpoint_id"),
            # What the host serves while it runs (the pin may name an image it never took); the pin when down.
            image=state.get("image") if state else d.pinned_image(),
            workflow_version=self._served_workflow_version(d, state) or specs.load_local(
                stack, self.stacks_file).workflow_version,
            logs_dir=str(d.logs_dir), db_path=str(d.db_path), state_dir=str(d.root), workers=workers,
            worker_exits=recent_worker_exits(d.logs_dir / "runpod-emulator.jsonl", serving=state.get("image"))
            if state else [],
            spec_changed=code_changed is None and self._spec_changed(stack, state),
            code_changed=code_changed,
            ended=None if state else self._ended(stack, d),
            pin_not_served=self._pin_not_served(stack, d, state),
            database_lost=self.lost_database(stack),
            smoke_failed=self._smoke_failed(stack, state.get("image"), "serves") if state else
            self._smoke_failed(stack, d.pinned_image(), "is pinned to"),
        )

    def _smoke_failed(self, stack: str, image: str | None, verb: str) -> str | None:
        """Why PROD's image is one found broken there, in a sentence (as promote and rollback say it): its last golden
        run on the stack that judged it (a smoke run as a rule; a passing `golden --case` run is none) failed, named
        as the run it was (a failed `--case` run was called a "full golden run"). None when it passed, never ran, or
        the stack is no PROD; and when a promotion of it, or a rollback to it, began after that run and was cut short
        (or is under way) before a smoke run judged it again: the newest change speaks, in the UNVERIFIED line
        (`promote --retry-rejected` cut short by SIGTERM was shown as the older run's failure, with the advice to
        roll back, and no word of the promotion to retry; a `rollback --to` it cut short, likewise)."""
        if image is None or self._role(stack) != "prod":
            return None
        from goldgate.release.history import change_cut_short  # only `status` of a PROD reads the ledger
        from goldgate.release.ledger import golden_run_named, last_golden_run, last_prod_change

        run = last_golden_run(self.home, stack, image)
        if run is None or run.get("passed") is True:
            return None
        try:
            if change_cut_short(last_prod_change(self.home, stack), image, after=run.get("seq")):
                return None
        except (OSError, GoldgateError):   # read just now as strictly: changed since; the UNVERIFIED line says it
            return None
        what = golden_run_named(run)
        failures = run.get("failures")
        first = f"; first failure: {' '.join(str(failures[0]).split())[:200]}" if isinstance(failures, list) and failures else ""
        said = f"{stack} {verb} {image}, whose {what} failed there (ledger #{run.get('seq')}, {run.get('ts')}{first})"
        earlier = last_golden_run(self.home, stack, image, passed=True)
        if earlier is not None:   # verified there before: the fault may be PROD's own, not the release's
            return (f"{said}; it passed there before (ledger #{earlier.get('seq')}): once the cause on {stack} is "
                    f"fixed, `goldgate rollback --to {image}` runs its smoke again; if the release is at fault, "
                    f"`goldgate rollback` takes {stack} off it (docs/RUNBOOK.md, Rollback)")
        return f"{said}: `goldgate rollback` takes {stack} off it (docs/RUNBOOK.md, Rollback)"

    @staticmethod
    def _served_workflow_version(d: StackDir, state: dict[str, Any]) -> str | None:
        """The workflow version a running stack's service and workers run: its host read the stacks file once, when
        it started, and gives that version to every service it starts (service.json) and every worker. The stacks
        file's, shown instead, named a version an edit made that nothing ran yet. None when down, or unreadable."""
        if not state:
            return None
        config = d.service_config()
        version = config.get("workflow_version") if config is not None else None
        return version if isinstance(version, str) and version else None

    def _pin_not_served(self, stack: str, d: StackDir, state: dict[str, Any]) -> str | None:
        """Why a running stack serves another image than its pin, in a sentence; None when it serves its pin (or is
        down). A deploy (and a promote's or rollback's) moves the pin, then tells the host: one killed in between,
        or whose host never took the pin, left a pin the stack does not serve, which its next start would run. So
        did a host that could not serve the pin nor put it back (it says so in `redeploy_failed`), and a pin.json
        moved aside under a host that serves (its next start runs another image than it serves)."""
        if not state:
            return None
        served, pinned = state.get("image"), d.pinned_image()
        if pinned is None and served is not None:  # moved aside (the advice for an empty one), or removed
            runs = "no image" if self._role(stack) == "prod" else "the working tree's image"
            return (f"no pin ({d.pin_file} is missing), but its host serves {served}: its next start (`goldgate "
                    f"down` and `up`, or a host that dies) runs {runs}; {self._keep_served(stack, served)} pins the "
                    "image it serves")
        if pinned is None or pinned == served:
            return None
        deploying = _pid(d.deploy_pid())
        if deploying is not None and _alive(deploying):
            return (f"pinned to {pinned}, which a deploy (pid {deploying}) is applying now; its host serves "
                    f"{served or 'no image'} until then")
        failed = state.get("redeploy_failed")
        if isinstance(failed, dict) and failed.get("image") == pinned:
            # The host took the pin and could not serve it, nor put the pin back (a full disk): what it recorded,
            # not a deploy that "ended before the host took it", and not first the deploy that just failed.
            back = failed.get("pin_not_reverted")
            again = ("the `goldgate promote` or `goldgate rollback`" if self._role(stack) == "prod"
                     else f"`goldgate deploy {stack} --image {pinned}`")
            return (f"pinned to {pinned}, but its host serves {served or 'no image'}: its host could not start its "
                    f"service on {pinned} ({failed.get('error')})" + (f" and the pin could not go back ({back})"
                                                                       if back else "") +
                    "; its next start (`goldgate down` and `up`, or a host that dies) runs the pin; " +
                    (f"{self._keep_served(stack, served)} puts the pin back on the image it serves, or " if served
                     else "") + f"once the cause is fixed {again} tries it again")
        if self._role(stack) == "prod":
            outside = self._pinned_outside_goldgate(stack, d, pinned, served)
            if outside is not None:
                return outside
            advice = ("run the interrupted `goldgate promote` (with `--retry-rejected` if it had it) or `goldgate "
                      "rollback` again (a rollback that takes PROD off a candidate no smoke run judged is no verdict on "
                      "it)") + (
                f", or `goldgate rollback --to {served}` to keep what it serves" if served else "")
        else:
            advice = f"`goldgate deploy {stack} --image {pinned}` applies the pin" + (
                f"; `--image {served}` keeps what it serves" if served else "")
        return (f"pinned to {pinned}, but its host serves {served or 'no image'}: a deploy, promote or rollback "
                "moved the pin and ended before the host took it (killed, or its host was hung); the stack serves "
                f"{served or 'no image'} until one completes, and its next start (`goldgate down` and `up`, or a "
                f"host that dies) runs the pin; {advice}")

    def _pinned_outside_goldgate(self, stack: str, d: StackDir, pinned: str, served: Any) -> str | None:
        """For a PROD whose pin names another image than its host serves: why, when no promotion or rollback in the
        release ledger moved the pin to it (its pin.json edited by hand, or a ledger that lost its entries), in a
        sentence with the ways out; None when the ledger's last change of it accounts for the pin (one cut short, or
        under way), or cannot be read: a change cut short is said then. Nothing was interrupted, so "run the
        interrupted `goldgate promote`" would send the operator after a command nobody ran."""
        from goldgate.release.history import pin_accounted_for  # only `status` of a PROD reads the ledger
        from goldgate.release.ledger import last_prod_change

        try:
            if pin_accounted_for(last_prod_change(self.home, stack), pinned):
                return None
            # A release it serves that none verified has its own UNVERIFIED line, with its ways out (`goldgate status`)
            kept = isinstance(served, str) and last_prod_change(self.home, stack, verifying=served) is not None
            verified = last_prod_change(self.home, stack, verifying=pinned)
        except (OSError, GoldgateError):
            return None
        staging = self._staging_name()
        back = f"`goldgate rollback --to {served}` puts the pin back on the release it serves (and smokes it); " \
            if kept else ""
        if verified is not None:   # a rollback to it runs its smoke there again, as `rollback --to` does for any
            what = f"a release verified there before (ledger #{verified.get('seq')})"
            serve = f"to serve {pinned}, `goldgate rollback --to {pinned}` deploys it (and smokes it)"
        else:
            what = f"which no promotion verified on {stack}"
            serve = (f"to serve {pinned}, take it through the gate: `goldgate deploy {staging} --image {pinned}`, "
                     f"`goldgate golden {staging}`, then `goldgate promote --image {pinned}`")
        return (f"pinned to {pinned}, but its host serves {served or 'no image'}: {_PINNED_OUTSIDE.format(d.pin_file)}; "
                f"its next start (`goldgate down` and `up`, or a host that dies) runs {pinned}, {what}; {back}{serve}")

    def _staging_name(self) -> str:
        """The stacks file's STAGING stack, which takes the candidates a promotion to PROD comes from."""
        try:
            return next((name for name in specs.local_stack_names(self.stacks_file)
                         if specs.load_local(name, self.stacks_file).role == "staging"), "staging")
        except (GoldgateError, OSError):
            return "staging"

    def _ended(self, stack: str, d: StackDir) -> str | None:
        """Why a stack that is down went down, when `goldgate down` did not stop it: its state file outlives a host
        that died, and says why a start failed. "down" alone read as stopped on purpose, with its jobs settled."""
        try:
            left, torn = d.read_state(), d.unreadable_state()
        except StateError:
            return None  # `up` names a state file it cannot read
        if torn is not None and self._live_host(stack, d) is None:
            return (f"its host ended without `goldgate down` and left {d.state_file} empty (killed while it was "
                    f"written, or a power cut; see {d.logs_dir / 'stackhost.stderr.log'}); `goldgate up {stack}` "
                    "starts it again")
        if not isinstance(left, dict) or self._live_host(stack, d) is not None:
            return None  # stopped by `down`, never started, or a host still starting or stopping
        log = d.logs_dir / "stackhost.stderr.log"
        if left.get("status") == "failed":
            return (f"its last start failed: {str(left.get('error'))[:300]} (logs: {d.logs_dir}); fix that and run "
                    f"`goldgate up {stack}`")
        if left.get("status") == "ready":
            return (f"its host (pid {left.get('pid')}) ended without `goldgate down` ({_why_host_ended(log, left)}); "
                    f"jobs it had queued get no webhook: `goldgate up {stack}` starts it again and names them")
        if left.get("status") == "stopped":
            return self._stopped_by_signal(stack, left)
        return None

    @staticmethod
    def _stopped_by_signal(stack: str, left: dict[str, Any]) -> str:
        """A host stopped by a signal goldgate did not send (a reboot, systemd, `kill`), as its last record says
        (StackHost.record_stop): which signal, when, and the jobs it left that no webhook will settle."""
        def count(name: str) -> int:
            value = left.get(name)
            return value if type(value) is int and value >= 0 else 0

        unsettled, unsent = count("unsettled"), count("no_runpod_id")
        named = left.get("job_ids")
        ids = [i[:64] for i in named if isinstance(i, str)][:5] if isinstance(named, list) else []
        signal_name, when = str(left.get("signal") or "a signal")[:16], str(left.get("stopped_at") or "?")[:40]
        head = (f"its host (pid {left.get('pid')}) was stopped by a signal ({signal_name}, at {when}), not by "
                f"`goldgate down` (a reboot, systemd, `kill`?)")
        if unsettled + unsent == 0:
            jobs = "no job was in flight" if left.get("jobs_read") is not False else "its jobs could not be read"
            return f"{head}; {jobs}; `goldgate up {stack}` starts it again"
        first = f" (first: {' '.join(ids)})" if ids else ""
        return (f"{head}: {unsettled + unsent} job(s) were still queued or in progress{first} and get no webhook, its "
                f"RunPod having ended with it; `goldgate stuck {stack}` lists them; `goldgate up {stack}` starts it "
                "again, then recover each")

    def code_changed(self, stack: str) -> str | None:
        """Why the running stack's host runs other goldgate code than this checkout's, and what restarts it on this
        one; None when it runs this checkout's code, or the stack is down."""
        return self._code_changed(stack, self._state(stack) or {})

    def _code_changed(self, stack: str, state: dict[str, Any]) -> str | None:
        if not state:
            return None
        record = state.get("code")
        if not isinstance(record, dict):  # a host of a goldgate that kept no record: an older one
            what = "its host was started by an older goldgate, whose code it still runs (goldgate was upgraded since)"
        else:
            changed = changed_code(record)
            if not changed:
                return None
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            what = (f"its host runs the goldgate code it started with, which this checkout has changed since ({shown}: "
                    "an upgrade, or an edit)")
        if self._settings_differ(stack, state):
            # Its services, each deploy's new one too, are configured from the section as the host read it: a
            # setting an upgrade added (api.rate_limits, say) is not in force, whatever the deploy's code.
            what += (", and keeps the settings it read then (this checkout reads its stacks file section otherwise: "
                     "a setting the upgrade added, at its default, or an edit)")
        missing = self._missing_migrations(stack)
        if missing:
            what += f", on a database without this checkout's migrations {', '.join(missing)}"
        return (f"{what}; `goldgate down {stack} && goldgate up {stack}` runs this checkout's (the local RunPod's jobs "
                "in flight end with it; `goldgate recover` settles them)")

    def _settings_differ(self, stack: str, state: dict[str, Any]) -> bool:
        """`_spec_changed` for the code line, which must be said even when the stacks file cannot be read now."""
        try:
            return self._spec_changed(stack, state)
        except (GoldgateError, OSError):
            return False

    def spec_changed(self, stack: str) -> bool:
        """Whether the running stack's section of the stacks file changed since its host started (it runs the old
        one until it restarts); False for a stack that is down, or whose host recorded no fingerprint."""
        return self._spec_changed(stack, self._state(stack) or {})

    def _spec_changed(self, stack: str, state: dict[str, Any]) -> bool:
        started = state.get("spec_fingerprint")
        return isinstance(started, str) and started != spec_fingerprint(specs.load_local(stack, self.stacks_file))

    def secrets_changed(self, stack: str) -> bool:
        """Whether the secret files a running stack's service reads changed (a rotation, a hand edit) since it read
        them; False for a stack that is down, or whose host recorded nothing. Only the files the host recorded are
        compared: a host an older goldgate started recorded fewer."""
        started = (self._state(stack) or {}).get("secrets_stamp")
        if not isinstance(started, dict):
            return False
        now = self._dir(stack).rotated_secrets_stamp()
        return any(name in started and started[name] != stamp for name, stamp in now.items())

    def secrets_changed_advice(self, stack: str) -> str:
        d = self._dir(stack)
        in_flight = "(the local RunPod's jobs in flight end with it; `goldgate recover` settles them)"
        try:  # the files as the next service would take them: a stop now would leave the stack down on them
            d.current_secrets()
            d.webhook_secret_previous()
            d.api_token_previous()
            client_hashes(d)
        except EmptySecret as exc:
            # The next start makes a new one (StackDir.ensure), so the restart is the fix, not what to avoid until
            # the file is fixed: `up` alone leaves a running stack as it is, and a deploy rereads the empty file.
            return (f"{stack}: its secret files changed since its service started, which still uses the old ones: "
                    f"{exc} {in_flight}")
        except StateError as exc:
            before = f"`goldgate down {stack}` or `goldgate reload {stack}`"
            return (f"{stack}: its secret files changed since its service started, and the next start would refuse "
                    f"them: {exc}. The stack keeps serving on the old ones; fix the file before {before}")
        # A reload stops no job and writes no ledger entry, on PROD as on STAGING: the restart's cost is gone.
        return (f"{stack}: one or more of its secret files (secrets/api_token, secrets/webhook_secret, "
                "secrets/webhook_secret_previous, secrets/api_token_previous, secrets/clients/) changed since its "
                "service started, which still uses the old ones; apply them with `goldgate reload "
                f"{stack}` (no job stops, no ledger entry)")

    def _role(self, stack: str) -> str:
        return specs.load_local(stack, self.stacks_file).role

    def _role_or_none(self, stack: str) -> str | None:
        """The stack's role for a message, or None when the stacks file cannot say now: the message is still said."""
        try:
            return self._role(stack)
        except (GoldgateError, OSError):
            return None

    def _stacks_file_shown(self) -> Path:
        where = self.stacks_file
        return where.relative_to(REPO) if where.is_relative_to(REPO) else where

    def spec_changed_advice(self, stack: str) -> str:
        return (f"{stack}: {self._stacks_file_shown()} changed since it started; `goldgate down {stack} && goldgate up "
                f"{stack}` applies it (`goldgate reload {stack}` applies its `api` settings alone, with no job "
                "stopped)")

    def require_running(self, stack: str) -> dict[str, Any]:
        state = self._state(stack)
        if not state:
            raise self.not_up(stack)
        return state

    def not_up(self, stack: str) -> StateError:
        """The error for a stack that is not up, naming a missing state dir (goldgate run from another directory
        than the one that started the stacks sees none of them)."""
        where = "" if self.home.exists() else (f" (no state dir at {self.home}: if it runs, it was started from "
                                               "another directory; run goldgate there, or set GOLDGATE_HOME)")
        return StateError(f"stack {stack} is not up{where}; run `goldgate up {stack}`")

    # -- reload ---------------------------------------------------------------------------------
    def reload(self, stack: str, progress: Progress = _quiet, timeout_s: float = 120.0) -> Reloaded:
        """Apply the stack's secret files, and its section's `api` settings (the service's alone), to its running
        service (`goldgate reload`): the host starts a new service on them beside the old one, with the same image
        and endpoint, and stops the old one once it has answered what it holds. RunPod's endpoint, workers, queue
        and jobs in flight are untouched; no pin moves and no ledger entry is made: the endpoint's settings wait
        for `down` and `up`, whole. Waits for the host's word in state.json, as a deploy does. A new service that
        refuses the files changes nothing, and is a StateError naming the file."""
        d = self._dir(stack)  # an unknown stack is refused with the stacks the file names
        if not self._state(stack):
            raise self._not_up_to_reload(stack)
        # The new service runs this checkout's code, which may write a column a migration of its own adds.
        self.require_migrated(stack)
        with d.reloading() as holder:
            if holder is not None:
                raise StateError(f"{holder} holds stack {stack}: one deploy or reload at a time, and none while it "
                                 f"starts or stops; nothing was applied. Wait for it, then run `goldgate reload "
                                 f"{stack}` again")
            return self._reload(stack, d, progress, timeout_s)

    def _not_up_to_reload(self, stack: str) -> StateError:
        return StateError(f"stack {stack} is not up, so there is nothing to reload: it reads its files at `goldgate "
                          f"up {stack}`")

    def _reload(self, stack: str, d: StackDir, progress: Progress, timeout_s: float) -> Reloaded:
        state = self._state(stack)  # again, under the lock: the reload count to wait past is this one's
        if state is None:
            raise self._not_up_to_reload(stack)
        asked = state.get("reload")
        if not isinstance(asked, dict) or asked.get("signal") != RELOAD_SIGNAL.name:
            # To a host that installed no handler the signal is the default's: it would end the host and every job.
            raise StateError(f"{stack}'s host was started by an older goldgate, which takes no reload (the signal "
                             f"would stop it); nothing was sent. `goldgate down {stack} && goldgate up {stack}` "
                             "restarts it on this checkout (the local RunPod's jobs in flight end with it; `goldgate "
                             f"recover` settles them), and from then on `goldgate reload {stack}` applies its files")
        count = asked.get("count", 0)
        progress(f"{stack}: starting a service on its secret files beside the one that serves")
        sent = time.monotonic()
        try:
            os.kill(state["pid"], RELOAD_SIGNAL)
        except ProcessLookupError:
            raise self._not_up_to_reload(stack) from None
        deadline = time.monotonic() + timeout_s
        while True:
            now = self._state(stack)
            if now is None:
                raise self._stopped_while_reloading(stack, d)
            done = now.get("reload")
            if reload_answered(done, count, sent):
                break
            if time.monotonic() >= deadline:
                raise StateError(f"{stack}'s host did not answer the reload within {timeout_s:.0f} s (logs: "
                                 f"{d.logs_dir}; a host that cannot write its state, on a full disk, says nothing): "
                                 f"`goldgate status {stack}` says what it serves, and `goldgate up {stack}` whether "
                                 "its secret files are applied")
            time.sleep(0.1)
        if done.get("outcome") != "applied":
            raise StateError(f"{stack} refused its secret files, so its service serves on with the ones it read "
                             f"before and nothing changed: {done.get('error')}. Fix that, then run `goldgate reload "
                             f"{stack}` again")
        changed = [str(x) for x in done.get("changed") or []]
        applied = [str(x) for x in done.get("settings") or []]
        rest = None
        if done.get("settings_unread"):
            rest = (f"{stack}: its API settings were not reread ({done['settings_unread']}): the service keeps those "
                    "it had; fix the stacks file, then run the reload again")
        elif self._settings_differ(stack, now):  # the host recorded what it took: what differs still is not applied
            rest = (f"{stack}: its section of {self._stacks_file_shown()} changed beyond the API settings a reload "
                    "applies (the endpoint's, storage's, the database's or `local`): `goldgate down "
                    f"{stack} && goldgate up {stack}` applies those (the local RunPod's jobs in flight end with it; "
                    "`goldgate recover` settles them)")
        return Reloaded(stack, changed, applied, _pid(now.get("service_pid")), rest)

    def _stopped_while_reloading(self, stack: str, d: StackDir) -> StateError:
        state = d.read_state()
        why = state.get("error") if isinstance(state, dict) and state.get("status") == "failed" else None
        return StateError(f"stack {stack} stopped while it reloaded its secret files" + (f": {why}" if why else "") +
                          f" (logs: {d.logs_dir}); `goldgate up {stack}` starts it again, on its files as they are")

    # -- deploy ---------------------------------------------------------------------------------
    def deploy(self, stack: str, image: str, progress: Progress = _quiet, timeout_s: float = 120.0) -> StackStatus:
        """Pin `image` for the stack, redeploy, and wait until every worker runs it."""
        if not specs.is_digest_ref(image):
            raise StateError(f"refusing to deploy {image!r}: images are deployed by digest (repo@sha256:<64 hex>)")
        d = self._dir(stack)
        self.require_running(stack)  # "not up" comes first
        # A host an older goldgate started serves a database this checkout's service cannot write (a column a later
        # migration adds): the new service would answer every create 500 after a rollout that "completed".
        self.require_migrated(stack)
        if not image_store.is_local_ref(image):
            # A local worker runs a snapshot of this home, nothing a registry holds: a pushed image was pinned,
            # the rollout "completed", and every job then stayed queued while each worker failed to start.
            raise StateError(f"refusing to deploy {image} to the local stack {stack}: a local stack runs the "
                             f"snapshots `goldgate build` makes here ({image_store.REF_PREFIX}<64 hex>), not "
                             "a registry image; a pushed image goes to the cloud stacks (`--target cloud`)")
        image_store.resolve(image, self.home)  # an image this home never built: refused before the pin moves
        with d.deploying() as holder:
            if holder is not None:
                raise StateError(f"{holder} holds stack {stack}: one deploy at a time, and none while it starts or "
                                 f"stops; nothing was pinned. Wait for it, then `goldgate status {stack}` says what "
                                 "the stack runs")
            return self._deploy(stack, d, image, progress, timeout_s)

    def _deploy(self, stack: str, d: StackDir, image: str, progress: Progress, timeout_s: float) -> StackStatus:
        state = self.require_running(stack)  # again, under the lock: the generation to wait past is this one's
        # A deploy writes the pin, and its host the new service's config and its state: on a full disk the host's
        # writes failed after the pin had moved. Found out before anything moves, and said in one line.
        served = state.get("image") or "no image"
        problem = _write_probe(d)
        if problem is None:
            try:
                d.pin(image, reason="deploy")
            except OSError as exc:
                problem = write_failure(exc)
        else:
            problem = f"{problem} writing to {d.root}"
        if problem is not None:
            # PROD takes no `goldgate deploy`: its deploys are a promote's or a rollback's.
            again = ("the `goldgate promote` or `goldgate rollback`" if self._role(stack) == "prod"
                     else "the deploy")
            raise StateError(f"cannot deploy {image} to {stack}: {problem}; nothing was pinned and {stack} still "
                             f"serves {served}. Free some space, then run {again} again")
        progress(f"{stack}: pinned {image}; redeploying")
        try:
            os.kill(state["pid"], signal.SIGHUP)
        except ProcessLookupError:  # the host died since it was found running: the pin waits for the next `up`
            raise self._stopped_while(stack, d, f"it was told to redeploy {image}", image) from None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = self._state(stack)
            if now is None:  # its host stopped (a failed redeploy ends it): no later look would find it ready
                raise self._stopped_while(stack, d, f"it redeployed {image}", image)
            if now.get("generation", 0) > state.get("generation", 0):
                failed = now.get("redeploy_failed")
                if isinstance(failed, dict) and failed.get("image") == image:
                    if failed.get("pin_not_reverted"):  # the host could not put its pin back (a full disk)
                        raise StateError(
                            f"{stack} could not start its service on {image}, so it still serves {now.get('image')}: "
                            f"{failed.get('error')}; its pin still names {image} ({failed['pin_not_reverted']}), "
                            f"which its next start would run: once there is space, run it again, or "
                            f"{self._keep_served(stack, now.get('image'))} to keep what it serves")
                    raise StateError(f"{stack} could not start its service on {image}, so it still serves and "
                                     f"stays pinned to {now.get('image')}: {failed.get('error')}")
                if now.get("image") == image:
                    break
            time.sleep(0.1)
        else:
            now = self._state(stack) or {}
            serves = f"; it still serves {now.get('image') or 'no image'}" if now.get("image") != image else ""
            raise StateError(f"{stack} did not pick up {image} within {timeout_s:.0f} s{serves} (logs: {d.logs_dir}; "
                             f"a host that cannot write its state, on a full disk, says nothing: `goldgate status "
                             f"{stack}` says what it serves and pins)")
        self.wait_rollout(stack, progress, max(1.0, deadline - time.monotonic()))
        return self.status(stack)

    def _keep_served(self, stack: str, served: Any) -> str:
        """The command that pins the image a stack serves again: PROD takes no `goldgate deploy`."""
        if self._role(stack) == "prod":
            return f"`goldgate rollback --to {served}`"
        return f"`goldgate deploy {stack} --image {served}`"

    def _stopped_while(self, stack: str, d: StackDir, doing: str, image: str) -> StateError:
        """The error for a host that stopped while `doing` (a redeploy of `image`, pinned already): with the reason it
        gave, when it gave one. A STAGING `up` then starts on that pin with no deploy of it in the ledger (the
        checklist's pipeline lines, and `history`, show none): a deploy of it records it, and a golden run follows."""
        state = d.read_state()
        why = state.get("error") if isinstance(state, dict) and state.get("status") == "failed" else None
        stopped = f"stack {stack} stopped while {doing}" + (f": {why}" if why else "") + f" (logs: {d.logs_dir}); "
        if self._role_or_none(stack) == "prod":   # PROD's deploys are a promote's or a rollback's, which say what follows
            return StateError(stopped + f"`goldgate up {stack}` starts it again on its pinned image")
        return StateError(stopped + f"`goldgate up {stack}` starts it again on its pinned image ({image}), which no "
                          f"deploy in the ledger put there: then `goldgate deploy {stack} --image {image}` records it, "
                          f"and `goldgate golden {stack}` tests it")

    def wait_rollout(self, stack: str, progress: Progress = _quiet, timeout_s: float = 120.0) -> None:
        """Wait until the endpoint's newest release is on 100% of its workers. RolloutNotComplete when it is not within
        `timeout_s`, or the local RunPod cannot be read: the stack serves the new release all the same."""
        state = self.require_running(stack)
        endpoint_id = state["endpoint_id"]
        client = ControlPlaneClient(api_key=self.runpod_api_key(stack), base_url=state["runpod_api_base"].removesuffix("/v2"))
        deadline = time.monotonic() + timeout_s
        rollout = None
        with client:
            try:
                while time.monotonic() < deadline:
                    rollout = client.list_releases(endpoint_id).rollout
                    # RunPod reports 0% when there are no workers; then nothing runs an old release either.
                    if not rollout.in_progress and (rollout.workers_total == 0 or rollout.percent_on_latest >= 100):
                        progress(f"{stack}: rollout complete")
                        return
                    time.sleep(0.2)
                workers = client.list_workers(endpoint_id).workers
            except RunPodError as exc:
                raise RolloutNotComplete(f"its rollout could not be watched (its RunPod answered: {exc}): "
                                         f"`goldgate status {stack}` shows its workers", endpoint_id, {}) from None
        counts = {} if rollout is None else {"workers_total": rollout.workers_total,
                                             "workers_on_latest": rollout.workers_on_latest,
                                             "percent_on_latest": rollout.percent_on_latest}
        raise RolloutNotComplete(self._rollout_held(stack, timeout_s, rollout, workers), endpoint_id, counts)

    def _rollout_held(self, stack: str, timeout_s: float, rollout: Any, workers: Any) -> str:
        """Why a rollout did not reach every worker, and what to do, in few words (the CLI cuts a line past 600
        characters, and the caller's adds two image names): a worker of the release before keeps it while its job
        runs (RunPod's rolling release replaces a worker once it is idle), so a long render holds the rollout."""
        seen = "" if rollout is None else f" ({rollout.workers_on_latest} of {rollout.workers_total} on it)"
        held = f"its rollout did not reach every worker within {timeout_s:.0f} s{seen}"
        busy = [w.id for w in workers if w.is_stale and w.status == "RUNNING"]
        if not busy:
            return f"{held}: `goldgate status {stack}` shows its workers"
        jobs = self._jobs_on(stack, busy)
        more = f" and {len(jobs) - _NAMED_BUSY_JOBS} more" if len(jobs) > _NAMED_BUSY_JOBS else ""
        named = f" ({', '.join(jobs[:_NAMED_BUSY_JOBS])}{more})" if jobs else ""
        who = ("1 worker of the release before, busy with a job{}, takes it only when that ends" if len(busy) == 1
               else f"{len(busy)} workers of the release before, busy with jobs{{}}, take it only when those end")
        return (f"{held}: {who.format(named)}; wait, watching `goldgate status {stack}`; a stuck job holds it: "
                f"`goldgate stuck {stack}` lists those, `goldgate recover JOB --stack {stack}` settles each")

    def _jobs_on(self, stack: str, workers: list[str]) -> list[str]:
        """The jobs `workers` run, by the ids `goldgate recover` takes, in the order they took them: from the tail of
        the local RunPod's log, which says which job each worker took and which ended. Advice only: none when it
        cannot be read."""
        running: dict[str, tuple[Any, Any]] = {}   # RunPod job id -> (goldgate's job id, the worker that took it)
        log = self._dir(stack).logs_dir / "runpod-emulator.jsonl"
        for line in _lines(_read_regular(log, _LOG_TAIL_BYTES, True)):
            data = line.get("data") if isinstance(line.get("data"), dict) else {}
            runpod_id = str(line.get("runpod_job_id") or data.get("job"))
            if line.get("event") == "job.started":
                running[runpod_id] = (line.get("job_id"), data.get("worker"))
            elif line.get("event") in ("job.finished", "job.requeued", "job.expired", "job.purged"):
                running.pop(runpod_id, None)
        return [str(job) for job, worker in running.values() if job and worker in workers]
