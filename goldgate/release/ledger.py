"""The release ledger: an append-only, hash-chained record of every build, deploy, golden run,
promotion and rollback, with its evidence. `<home>/ledger.jsonl`, one JSON object per line.

Each entry carries `prev` (the previous entry's `hash`) and its own `hash` (sha256 of the entry's
canonical JSON without `hash`), so an edited, dropped or reordered line breaks the chain and
`verify()` names it. Appends take an exclusive lock on the file so that concurrent commands
(a CLI run and a CI job on the same state dir) cannot interleave or fork the chain; reads take a
shared one, so a reader never sees half an entry.

In CI the ledger lives on a branch and the runner's copy dies with the runner: with GOLDGATE_LEDGER_SAVE set to
a bash script (the workflows' LEDGER_SAVE), every append runs it before goldgate goes on, so a PROD change's
intent is on the branch before PROD changes and the next job can reconcile a change whose runner was lost. A save
that times out is the last one the process tries: the job's own save step saves what follows.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import StateError
from goldgate.logs import now_rfc3339

GENESIS = "0" * 64
SAVE_ENV = "GOLDGATE_LEDGER_SAVE"
# A save is a fetch and a push of one small file (seconds, three tries at most); each append waits for it, and a
# rollback of a broken PROD must not wait minutes for a hung push.
SAVE_TIMEOUT_S = 60
_save_timed_out = False   # set by this process's first save that timed out: it runs no more saves
KINDS = ("build", "deploy", "golden", "promotion", "rollback")
# The largest line we will read back; anything bigger was not written by us.
_MAX_LINE = 1_000_000


class LedgerTampered(StateError):
    """The hash chain does not verify: a line was edited, removed or reordered."""


@dataclass(frozen=True)
class Entry:
    """One ledger line. `fields` holds the kind-specific evidence."""

    seq: int
    ts: str
    kind: str
    fields: Mapping[str, Any]
    prev: str
    hash: str

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, **self.fields,
                "prev": self.prev, "hash": self.hash}


def _digest(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def detect_trigger(explicit: str | None = None) -> str:
    """Who or what asked: `--trigger` wins; in GitHub Actions the run; otherwise the local user."""
    if explicit:
        return explicit
    if os.environ.get("GITHUB_ACTIONS") == "true":
        run = os.environ.get("GITHUB_RUN_ID", "?")
        actor = os.environ.get("GITHUB_ACTOR", "?")
        return f"ci:github-actions run {run} by {actor}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    return f"user:{user}"


class Ledger:
    """Append and read `<home>/ledger.jsonl`."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / "ledger.jsonl"

    def append(self, kind: str, **fields: Any) -> Entry:
        if kind not in KINDS:
            raise ValueError(f"unknown ledger kind {kind!r}")
        reserved = {"seq", "ts", "kind", "prev", "hash"} & set(fields)
        if reserved:
            raise ValueError(f"ledger fields may not be named {sorted(reserved)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "r+", encoding="utf-8", errors="surrogateescape") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                last = None
                for last in self._parse(fh):
                    pass
                body = {"seq": (last.seq + 1) if last else 1, "ts": now_rfc3339(), "kind": kind,
                        **json.loads(json.dumps(fields, default=str)),
                        "prev": last.hash if last else GENESIS}
                line = {**body, "hash": _digest(body)}
                _write_line(fh.fileno(), (json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        entry = _entry(line)
        _save(entry)
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first, after verifying the chain (raises LedgerTampered)."""
        if not self.path.exists():
            return []
        # Undecodable bytes reach _parse as text that is not a valid entry, so the line is named.
        with self.path.open(encoding="utf-8", errors="surrogateescape") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # wait out an append in progress: its half line is not tampering
            try:
                return list(self._parse(fh))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def verify(self) -> int:
        """Check the whole chain; returns the number of entries."""
        return len(self.entries())

    def _parse(self, fh: Any) -> Iterator[Entry]:
        prev, seq = GENESIS, 0
        # Each line is read at most one character past the limit: a file that is one endless line (a sparse or
        # binary file restored in its place) is named, not read into memory whole.
        for number, raw in enumerate(iter(lambda: fh.readline(_MAX_LINE + 1), ""), start=1):
            if not raw.strip():
                continue
            where = f"{self.path}:{number}"
            if len(raw) > _MAX_LINE:
                raise LedgerTampered(f"{where}: line is longer than {_MAX_LINE} bytes; the ledger has been altered")
            try:
                line = json.loads(raw)
            except (ValueError, RecursionError):  # not JSON, absurd numbers or nesting
                raise LedgerTampered(f"{where}: not valid JSON; the ledger has been altered or truncated "
                                     "(restore it from a backup; never edit it by hand)") from None
            if not isinstance(line, dict) or "hash" not in line or not isinstance(line.get("ts"), str) \
                    or line.get("kind") not in KINDS:
                raise LedgerTampered(f"{where}: not a ledger entry")
            body = {k: v for k, v in line.items() if k != "hash"}
            if line.get("prev") != prev:
                raise LedgerTampered(f"{where}: `prev` does not match the entry before it; "
                                     "an entry was removed, reordered or inserted")
            if _digest(body) != line["hash"]:
                raise LedgerTampered(f"{where}: hash mismatch; entry {line.get('seq')} was edited")
            if line.get("seq") != seq + 1:
                raise LedgerTampered(f"{where}: sequence {line.get('seq')} follows {seq}")
            entry = _entry(line)
            prev, seq = entry.hash, entry.seq
            yield entry


def _write_line(fd: int, data: bytes) -> None:
    """Append `data` whole, or not at all. A write cut short (a full disk, a file size limit, an interrupt between
    two writes) would leave half a line that every later command reads as tampering, a rollback included: the file
    is cut back to where it ended. Written unbuffered, so that no half-written buffer is flushed again on close."""
    end = os.lseek(fd, 0, os.SEEK_END)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise


def _save(entry: Entry) -> None:
    """Run the GOLDGATE_LEDGER_SAVE script, if set. A failed save is a warning, never an error: the entry is
    recorded here, the job's own save step tries again, and stopping now could leave a PROD change half done."""
    global _save_timed_out
    script = os.environ.get(SAVE_ENV)
    if not script or _save_timed_out:
        return
    note = " ".join(str(word) for word in (entry.kind, entry.get("phase"), f"#{entry.seq}") if word)
    env = {key: value for key, value in os.environ.items() if key != SAVE_ENV} | {"LEDGER_NOTE": note}
    try:
        code, said = _run_save(script, env)
    except subprocess.TimeoutExpired:
        _save_timed_out = True
        print(f"warning: ledger #{entry.seq} is recorded here but not saved (the save timed out after "
              f"{SAVE_TIMEOUT_S} s); this command saves no later entry either: the job's save step saves them",
              file=sys.stderr, flush=True)
        return
    except OSError as exc:
        print(f"warning: ledger #{entry.seq} is recorded here but not saved ({exc})", file=sys.stderr, flush=True)
        return
    if code != 0:
        lines = said.strip().splitlines()
        print(f"warning: ledger #{entry.seq} is recorded here but not saved (exit {code}: "
              f"{lines[-1] if lines else 'no output'}); the job's save step tries again", file=sys.stderr, flush=True)


def _run_save(script: str, env: dict[str, str]) -> tuple[int, str]:
    """Exit status and output of the save script. It runs in its own process group so that a timeout stops the git
    commands it started too: one left running could still push, or hold the checkout's git locks, when the job's
    save step runs. SIGTERM, not SIGKILL: git removes its lock files on it."""
    with subprocess.Popen(["bash", "-c", script], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True) as proc:
        try:
            said, _ = proc.communicate(timeout=SAVE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            raise
    return proc.returncode, said


def _entry(line: Mapping[str, Any]) -> Entry:
    fields = {k: v for k, v in line.items() if k not in ("seq", "ts", "kind", "prev", "hash")}
    return Entry(seq=int(line["seq"]), ts=str(line["ts"]), kind=str(line["kind"]), fields=fields,
                 prev=str(line["prev"]), hash=str(line["hash"]))
