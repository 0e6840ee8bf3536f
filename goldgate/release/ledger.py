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

The chain detects edits, not forgeries: whoever can write the file can append an entry and hash it. With
GOLDGATE_LEDGER_KEY set (a CI secret), every entry appended also carries `mac`, an HMAC-SHA256 of its canonical form
(which holds `prev`, so a MAC also pins everything before it) under that key, and each entry read says whether its MAC
verifies (`Entry.authentic`). The gate and rollback trust only such entries for what they rely on; without the key
every entry is taken as it is, as before, but a ledger that holds a signed one is not decided on
(`Ledger.require_key_if_signed`), nor read by `status` (`last_prod_change`). The key itself is never written or logged, and no process goldgate starts
sees it: the CLI takes it out of the environment before a command runs (`secrets_taken_from_env`), so Pulumi and its
provider plugins, docker, the save script and the local stacks inherit everything but the key.

The save script pushes with the job's GitHub token (contents: write). A step that runs goldgate with saves gives it
as GOLDGATE_LEDGER_SAVE_TOKEN, never GH_TOKEN: the CLI takes that out of the environment too, and hands it, as
GH_TOKEN, to the save script alone, so Pulumi, its plugins and the golden run never hold a token that can push.

Every append also writes one schema-v1 line (component `release`, docs/LOG_EVENTS.md) to `<home>/logs/release.jsonl`,
for the log pipeline a team alerts on: promotions, rollbacks, gate refusals and golden verdicts. The ledger stays
the record: a line that cannot be written is a warning, never a failed append.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import hmac
import io
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goldgate.errors import StateError
from goldgate.files import make_dirs
from goldgate.logs import JsonLogger, now_rfc3339
from goldgate.release.lock import open_state_file

GENESIS = "0" * 64
SAVE_ENV = "GOLDGATE_LEDGER_SAVE"
KEY_ENV = "GOLDGATE_LEDGER_KEY"
SAVE_TOKEN_ENV = "GOLDGATE_LEDGER_SAVE_TOKEN"
# An HMAC key is as strong as its guess space: `openssl rand -hex 32` gives 64 characters.
_MIN_KEY_CHARS = 32
# A save is a fetch and a push of one small file (seconds, three tries at most); each append waits for it, and a
# rollback of a broken PROD must not wait minutes for a hung push.
SAVE_TIMEOUT_S = 60
_save_timed_out = False   # set by this process's first save that timed out: it runs no more saves
_taken_key: str | None = None   # GOLDGATE_LEDGER_KEY as the running command found it (`secrets_taken_from_env`)
_taken_save_token: str | None = None   # GOLDGATE_LEDGER_SAVE_TOKEN, likewise
KINDS = ("build", "deploy", "golden", "promotion", "rollback")
# The largest line we will read back; anything bigger was not written by us.
_MAX_LINE = 1_000_000
# goldgate's own entries nest a few levels (a gate decision: conditions, each a mapping). Far deeper nesting is no
# entry of ours, and printing it (`history --json`) would exhaust the interpreter's recursion limit.
_MAX_DEPTH = 32
# Fields the release code compares, sets and looks up by: each is text (or null) in every entry goldgate writes.
_TEXT_FIELDS = ("stack", "image", "release_id", "before", "after", "pinned", "prod_image", "phase", "outcome",
                "reason", "suite", "report_sha256", "target", "trigger")
_ENTRY_KEYS = ("seq", "ts", "kind", "prev", "hash", "mac")
_RESTORE = " and restore the ledger from its backup (in CI, the release-ledger branch)"
RELEASE_LOG = Path("logs") / "release.jsonl"    # under the home
# The log line of each entry: (kind, phase, outcome) -> (event, level). A golden run's outcome is its verdict.
# A failure on PROD (a smoke run, a promotion, a rollback) is an error: PROD may serve a broken or unverified release.
RELEASE_EVENTS: dict[tuple[str, str | None, str | None], tuple[str, str]] = {
    ("build", None, None): ("release.built", "info"),
    ("deploy", None, None): ("release.deployed", "info"),
    ("golden", None, "passed"): ("release.golden_passed", "info"),
    ("golden", None, "failed"): ("release.golden_failed", "warning"),
    ("golden", None, "smoke_failed"): ("release.golden_failed", "error"),   # a smoke run on PROD's role
    ("promotion", "refused", None): ("release.gate_refused", "warning"),
    ("promotion", "intent", None): ("release.promotion_started", "info"),
    ("promotion", "outcome", "promoted"): ("release.promoted", "info"),
    ("promotion", "outcome", "deploy_failed"): ("release.promotion_failed", "error"),
    ("promotion", "outcome", "smoke_failed"): ("release.promotion_failed", "error"),
    ("promotion", "outcome", "smoke_not_run"): ("release.promotion_failed", "error"),
    ("promotion", "outcome", "interrupted"): ("release.promotion_interrupted", "warning"),
    ("rollback", "intent", None): ("release.rollback_started", "warning"),
    ("rollback", "outcome", "rolled_back"): ("release.rolled_back", "warning"),
    ("rollback", "outcome", "deploy_failed"): ("release.rollback_failed", "error"),
    ("rollback", "outcome", "smoke_failed"): ("release.rollback_failed", "error"),
    ("rollback", "outcome", "smoke_not_run"): ("release.rollback_failed", "error"),
    ("rollback", "outcome", "interrupted"): ("release.rollback_interrupted", "error"),
}
RELEASE_RECORDED = ("release.recorded", "info")   # an entry of any other shape: logged all the same
# Entry fields a log line carries under `data` (the rest, a gate's conditions or a golden run's failures, stay in
# the ledger: `goldgate history` shows them).
_LOGGED_FIELDS = ("phase", "outcome", "release_id", "before", "after", "intent_seq", "suite", "role", "target",
                  "report", "smoke_report", "trigger", "reused", "passed", "cases")
_log_warned: set[Path] = set()   # release logs this process failed to write: each is warned about once


class LedgerTampered(StateError):
    """The hash chain does not verify: a line was edited, removed or reordered."""


class LedgerKeyInvalid(StateError):
    """GOLDGATE_LEDGER_KEY is set but too short to authenticate anything."""


class LedgerKeyMissing(StateError):
    """The ledger holds signed entries, but GOLDGATE_LEDGER_KEY is not set: nothing in it can be authenticated."""


@dataclass(frozen=True)
class Entry:
    """One ledger line. `fields` holds the kind-specific evidence."""

    seq: int
    ts: str
    kind: str
    fields: Mapping[str, Any]
    prev: str
    hash: str
    mac: str | None = None
    authentic: bool = True     # False only when a ledger key is in use and `mac` is missing or does not verify

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        mac = {} if self.mac is None else {"mac": self.mac}
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, **self.fields,
                "prev": self.prev, "hash": self.hash, **mac}

    def mac_problem(self) -> str | None:
        """Why this entry cannot be trusted under the ledger key, in a few words; None when it can."""
        if self.authentic:
            return None
        if self.mac is None:
            return (f"ledger #{self.seq} ({self.kind}) carries no MAC: it was recorded without {KEY_ENV}, or not by "
                    "goldgate")
        return (f"ledger #{self.seq} ({self.kind}) has a MAC that does not verify with {KEY_ENV}: it was forged, or "
                "recorded under another key")


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def entry_hash(body: Mapping[str, Any]) -> str:
    """An entry's `hash`: the sha256 of `body` (the entry's line without `hash` and `mac`) in canonical JSON. A reader
    of the file that does not go through `Ledger` (`goldgate status`, reading from its end) checks a line with it."""
    return hashlib.sha256(_canonical(body)).hexdigest()


def entry_mac(key: bytes, body: Mapping[str, Any]) -> str:
    """An entry's `mac` under the ledger key (`key_from_env`): HMAC-SHA256 of `body` in canonical JSON."""
    return hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()



def key_from_env() -> bytes | None:
    """GOLDGATE_LEDGER_KEY as bytes (as the running command took it, else from the environment), None when unset
    or empty; a key too short to resist guessing is refused."""
    text = (_taken_key if _taken_key is not None else os.environ.get(KEY_ENV)) or ""
    if not text:
        return None
    if len(text) < _MIN_KEY_CHARS:   # the length only: the key itself is never shown
        raise LedgerKeyInvalid(f"{KEY_ENV} is {len(text)} characters long; use at least {_MIN_KEY_CHARS} (e.g. "
                               "`openssl rand -hex 32`), or unset it")
    return text.encode("utf-8", "surrogateescape")


@contextlib.contextmanager
def secrets_taken_from_env() -> Iterator[None]:
    """Run one command with GOLDGATE_LEDGER_KEY and GOLDGATE_LEDGER_SAVE_TOKEN out of the environment: every Ledger
    it makes still signs with the key and saves with the token, and no child process inherits either (the
    Automation API hands Pulumi and its plugins the whole environment). The key is checked, and refused, only when a
    Ledger is made: a command that keeps no ledger runs with any key. Put back afterwards, for callers that run
    commands in-process (the tests)."""
    global _taken_key, _taken_save_token
    outer = _taken_key, _taken_save_token
    key, token = os.environ.pop(KEY_ENV, None), os.environ.pop(SAVE_TOKEN_ENV, None)
    _taken_key, _taken_save_token = key, token
    try:
        yield
    finally:
        _taken_key, _taken_save_token = outer
        for name, text in ((KEY_ENV, key), (SAVE_TOKEN_ENV, token)):
            if text is not None:
                os.environ[name] = text


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
    """Append and read `<home>/ledger.jsonl`. `key` authenticates entries (default: GOLDGATE_LEDGER_KEY)."""

    def __init__(self, home: Path, key: bytes | None = None) -> None:
        self.path = Path(home) / "ledger.jsonl"
        self.log_path = Path(home) / RELEASE_LOG
        self._key = key if key is not None else key_from_env()

    @property
    def keyed(self) -> bool:
        """Whether entries are authenticated: appended with a MAC, and trusted only with a valid one."""
        return self._key is not None

    def require_key_if_signed(self, doing: str) -> None:
        """Refuse to decide on a signed ledger without its key. Unkeyed, every entry is taken as it is: a line
        appended without the key (a forged "promoted" one, say) would become a rollback target or open the gate,
        the very lines the key exists to stop. Appending (a build, a STAGING deploy) stays allowed without it."""
        if self.keyed:
            return
        signed = next((e for e in reversed(self.entries()) if e.mac is not None), None)
        if signed is not None:
            raise LedgerKeyMissing(
                f"cannot {doing}: {self.path} is signed with a ledger key (ledger #{signed.seq} carries a MAC) but "
                f"{KEY_ENV} is not set, and without it a line added by hand would be trusted like any other; set "
                f"{KEY_ENV} to the key the ledger is signed with (CI's secret); nothing was changed")

    def append(self, kind: str, **fields: Any) -> Entry:
        if kind not in KINDS:
            raise ValueError(f"unknown ledger kind {kind!r}")
        reserved = set(_ENTRY_KEYS) & set(fields)
        if reserved:
            raise ValueError(f"ledger fields may not be named {sorted(reserved)}")
        make_dirs(self.path.parent)
        fd = open_state_file(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, "the release ledger", _RESTORE)
        with os.fdopen(fd, "rb+", buffering=0) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                read = self._read(fh.fileno())
                last = read[-1] if read else None
                versions = {}   # image -> the workflow version its build recorded, for the log
                for e in read:
                    if e.kind == "build" and isinstance(e.get("workflow_version"), str):
                        versions[e.get("image")] = e.get("workflow_version")
                body = {"seq": (last.seq + 1) if last else 1, "ts": now_rfc3339(), "kind": kind,
                        **json.loads(json.dumps(fields, default=str)),
                        "prev": last.hash if last else GENESIS}
                line = {**body, "hash": entry_hash(body)}
                if self._key is not None:
                    line["mac"] = entry_mac(self._key, body)
                data = (json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode()
                end = _write_line(fh.fileno(), data)
                entry = _entry(line, True)
                self._verified_through(end, data, entry)
                # Under the ledger's lock, so that the log's lines are in the ledger's order.
                self._log(entry, entry.get("workflow_version") or versions.get(entry.get("image")))
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        _save(entry)
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, oldest first, after verifying the chain (raises LedgerTampered)."""
        try:
            fd = open_state_file(self.path, os.O_RDONLY, "the release ledger", _RESTORE)
        except FileNotFoundError:
            return []
        with os.fdopen(fd, "rb", buffering=0) as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # wait out an append in progress: its half line is not tampering
            try:
                return self._read(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def verify(self) -> int:
        """Check the whole chain; returns the number of entries."""
        return len(self.entries())

    def _log(self, entry: Entry, workflow_version: str | None) -> None:
        """Write `entry`'s line to the release log; on any failure, warn (once per log file) and go on."""
        try:
            _append_log_line(self.log_path, release_line(entry, workflow_version, self._key))
        except Exception as exc:  # noqa: BLE001 -- the ledger holds the entry: no log failure may stop a release
            if self.log_path not in _log_warned:
                _log_warned.add(self.log_path)
                print(f"warning: ledger #{entry.seq} is recorded, but its line could not be written to the release "
                      f"log {self.log_path} ({_why(exc)}); the ledger is the record (`goldgate history`); later "
                      "failures to write that log are not reported again", file=sys.stderr, flush=True)

    def _read(self, fd: int) -> list[Entry]:
        """Every entry of the open ledger `fd` (locked by the caller), the chain verified. The bytes this process
        verified before (`_verified`) are not parsed again when they are still the file's first bytes, as their
        sha256 shows: a promotion reads the ledger and appends to it several times, and each pass over two years of
        entries took seconds. Any other change (an edit, a truncation, a restore) is read from the start."""
        known = _verified.get(self.path)
        if known is not None and (known.key != self._key or not _starts_with(fd, known)):
            known = None
        hasher = known.sha256.copy() if known is not None else hashlib.sha256()
        read = list(known.entries) if known is not None else []
        start = known.size if known is not None else 0
        number = known.lines if known is not None else 0
        ended = True   # the bytes read end a line: only then may the next read start after them
        with os.fdopen(os.dup(fd), "rb") as fh:
            fh.seek(start)

            def lines() -> Iterator[tuple[int, bytes]]:
                nonlocal number, ended
                # Each line is read at most one byte past the limit: a file that is one endless line (a sparse or
                # binary file restored in its place) is named, not read into memory whole.
                for raw in iter(lambda: fh.readline(_MAX_LINE + 1), b""):
                    number += 1
                    hasher.update(raw)
                    ended = raw.endswith(b"\n")
                    yield number, raw

            last = read[-1] if read else None
            read.extend(self._parse(lines(), last.hash if last else GENESIS, last.seq if last else 0))
            size = fh.tell()
        if ended:
            _verified[self.path] = _Verified(self._key, size, hasher, number, tuple(read))
        return read

    def _verified_through(self, end: int, data: bytes, entry: Entry) -> None:
        """Extend what this process verified by the line it has just appended at byte `end`, when it verified
        everything before it (as `append` has, under the same lock)."""
        known = _verified.get(self.path)
        if known is None or known.size != end or known.key != self._key:
            _verified.pop(self.path, None)
            return
        hasher = known.sha256.copy()
        hasher.update(data)
        _verified[self.path] = _Verified(self._key, end + len(data), hasher, known.lines + 1,
                                         (*known.entries, entry))

    def _parse(self, lines: Iterable[tuple[int, bytes]], prev: str = GENESIS, seq: int = 0) -> Iterator[Entry]:
        """The entries of `lines` (numbered raw lines), which follow the entry `seq` whose hash is `prev`."""
        for number, raw in lines:
            if not raw.strip():
                continue
            where = f"{self.path}:{number}"
            if len(raw) > _MAX_LINE:
                raise _tampered(f"{where}: line is longer than {_MAX_LINE} bytes; the ledger has been altered")
            try:
                # Undecodable bytes become text that is not a valid entry, so the line is named.
                line = json.loads(raw.decode("utf-8", "surrogateescape"))
            except (ValueError, RecursionError):  # not JSON, absurd numbers or nesting
                raise _tampered(f"{where}: not valid JSON; the ledger has been altered or truncated") from None
            if not isinstance(line, dict) or "hash" not in line or not isinstance(line.get("ts"), str) \
                    or line.get("kind") not in KINDS:
                raise _tampered(f"{where}: not a ledger entry")
            odd = _odd_field(line)
            if odd:
                raise _tampered(f"{where}: {odd}; goldgate never writes such an entry: the ledger has been altered")
            body = {k: v for k, v in line.items() if k not in ("hash", "mac")}
            broken = _chain_fault(line, prev, seq)
            if broken == "prev":
                raise _tampered(f"{where}: `prev` does not match the entry before it; "
                                "an entry was removed, reordered or inserted")
            if entry_hash(body) != line["hash"]:
                raise _tampered(f"{where}: hash mismatch; entry {line.get('seq')} was edited")
            if broken == "seq":
                raise _tampered(f"{where}: sequence {line.get('seq')} follows {seq}")
            # Compared as bytes: compare_digest refuses str holding non-ASCII (a forged "mac" would be a traceback).
            entry = _entry(line, self._key is None or (isinstance(line.get("mac"), str) and hmac.compare_digest(
                line["mac"].encode("utf-8", "surrogateescape"), entry_mac(self._key, body).encode())))
            prev, seq = entry.hash, entry.seq
            yield entry


def _tampered(what: str) -> LedgerTampered:
    """A chain that does not verify, with the way out: every command that reads the ledger refuses until then."""
    return LedgerTampered(f"{what}; never edit the ledger by hand: restore it from its backup (in CI, the "
                          "release-ledger branch); with none, move it aside (`mv ledger.jsonl ledger.jsonl.broken` in "
                          "the state dir): the next command starts a new, empty one, which holds no verified release "
                          "until the next promotion")


@dataclass(frozen=True)
class _Verified:
    """What this process has read of one ledger and verified: its first `size` bytes (ending a line), their sha256,
    and their entries, as authenticated under `key`."""

    key: bytes | None
    size: int
    sha256: Any
    lines: int
    entries: tuple[Entry, ...]


_verified: dict[Path, _Verified] = {}   # by ledger path


def _starts_with(fd: int, known: _Verified) -> bool:
    """Whether the file open at `fd` still begins with the bytes `known` verified (read in chunks: no copy of a large
    ledger is held)."""
    hasher, offset = hashlib.sha256(), 0
    while offset < known.size:
        chunk = os.pread(fd, min(1 << 20, known.size - offset), offset)
        if not chunk:
            return False   # cut short
        hasher.update(chunk)
        offset += len(chunk)
    return hmac.compare_digest(hasher.digest(), known.sha256.digest())


def _write_line(fd: int, data: bytes) -> int:
    """Append `data` whole, or not at all; the offset it was written at. A write cut short (a full disk, a file size
    limit, an interrupt between two writes) would leave half a line that every later command reads as tampering, a
    rollback included: the file is cut back to where it ended. Written unbuffered, so that no half-written buffer is
    flushed again on close. A ledger whose last line lost its newline (cut by an editor, or restored through a
    shell's `$(cat ...)`) reads whole, but `data` glued onto that line would make both unreadable, every later
    command refusing the ledger: the newline goes in first, with `data`."""
    end = os.lseek(fd, 0, os.SEEK_END)
    if end and os.pread(fd, 1, end - 1) != b"\n":
        data = b"\n" + data
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise
    return end


def release_event(entry: Entry) -> tuple[str, str]:
    """The log event and level of a ledger entry (RELEASE_EVENTS)."""
    if entry.kind == "golden":
        passed = entry.get("passed") is True
        outcome = "passed" if passed else "smoke_failed" if _smoke_on_prod(entry) else "failed"
    else:
        outcome = entry.get("outcome")
    return RELEASE_EVENTS.get((entry.kind, entry.get("phase"), outcome), RELEASE_RECORDED)


def _smoke_on_prod(entry: Entry) -> bool:
    """A smoke run on PROD's role is an error: PROD may be serving a broken image. One run by hand on STAGING
    changes nothing: a warning, as any failed run. An entry written before the role was recorded is taken as
    PROD's, as it was logged then."""
    return entry.get("suite") == "smoke" and entry.get("role", "prod") == "prod"


def release_line(entry: Entry, workflow_version: str | None, key: bytes | None = None) -> str:
    """`entry` as one schema-v1 line: the release's trace at the top (stack, image as worker_image_tag, workflow
    version), the ledger's seq and the outcome under `data`. The ledger key is masked should it ever be in a field."""
    event, level = release_event(entry)
    stream = io.StringIO()
    secrets = () if key is None else (key.decode("utf-8", "surrogateescape"),)
    log = JsonLogger("release", stream=stream, secrets=secrets, stack=entry.get("stack"),
                     worker_image_tag=entry.get("image"), workflow_version=workflow_version)
    status = "passed" if entry.get("passed") is True else "failed" if entry.kind == "golden" else entry.get("outcome")
    log.log(level, event, status=status, reason=_reason(entry), message=_summary(entry), error=entry.get("error"),
            data={"seq": entry.seq, "kind": entry.kind,
                  **{name: entry.get(name) for name in _LOGGED_FIELDS if name in entry.fields}})
    return stream.getvalue()


def _refused_by(entry: Entry) -> list[Mapping[str, Any]]:
    """The gate conditions a refused promotion failed on."""
    gate = entry.get("gate")
    if entry.get("phase") != "refused" or not isinstance(gate, Mapping) or not isinstance(gate.get("conditions"), list):
        return []
    return [c for c in gate["conditions"] if isinstance(c, Mapping) and not c.get("passed")]


def _reason(entry: Entry) -> str | None:
    """A rollback's reason, or the names of the gate conditions a promotion was refused on."""
    if entry.get("phase") == "refused":
        return ", ".join(str(c.get("name")) for c in _refused_by(entry)) or None
    reason = entry.get("reason")
    return reason if isinstance(reason, str) else None


def _summary(entry: Entry) -> str:
    """One line an operator reads in an alert: what happened, where, to which image, and why it failed."""
    what = " ".join(str(word) for word in (entry.kind, entry.get("phase"), entry.get("suite"), entry.get("outcome"))
                    if word)
    where = f" on {entry.get('stack')}" if entry.get("stack") else ""
    failures, rolled = entry.get("failures"), entry.get("rollback")
    why = [c.get("detail") for c in _refused_by(entry)] or (failures[:3] if isinstance(failures, list) else [])
    if entry.get("rollout_confirmed") is False:   # the stack took the image; the watch of its rollout failed
        why.insert(0, "applied, its rollout not confirmed")
    if entry.kind == "promotion" and entry.get("outcome") in ("deploy_failed", "smoke_failed", "smoke_not_run"):
        why.append(f"automatic rollback to {rolled.get('image')}: {rolled.get('outcome')}"
                   if isinstance(rolled, Mapping) else "no automatic rollback")
    return f"ledger #{entry.seq}: {what}{where}: {entry.get('image') or '-'}" + "".join(f"; {w}" for w in why)


def _append_log_line(path: Path, text: str) -> None:
    """Append `text` to the log file at `path` whole (a cut-short write is taken back, so that the next line
    starts a line of its own), creating the file and its folder."""
    make_dirs(path.parent)
    fd = open_state_file(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "the release log")
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        view = memoryview(text.encode("utf-8"))
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise
    finally:
        os.close(fd)


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StateError | OSError) else f"{type(exc).__name__}: {exc}"


def _save(entry: Entry) -> None:
    """Run the GOLDGATE_LEDGER_SAVE script, if set. A failed save is a warning, never an error: the entry is
    recorded here, the job's own save step tries again, and stopping now could leave a PROD change half done."""
    global _save_timed_out
    script = os.environ.get(SAVE_ENV)
    if not script or _save_timed_out:
        return
    note = " ".join(str(word) for word in (entry.kind, entry.get("phase"), f"#{entry.seq}") if word)
    # The script only pushes a file: it gets neither itself (no save from within a save) nor the ledger key. It is
    # the one process that gets the save token, under the name its git commands read (GH_TOKEN).
    token = _taken_save_token if _taken_save_token is not None else os.environ.get(SAVE_TOKEN_ENV)
    env = {key: value for key, value in os.environ.items() if key not in (SAVE_ENV, KEY_ENV, SAVE_TOKEN_ENV)}
    env["LEDGER_NOTE"] = note
    if token:
        env["GH_TOKEN"] = token
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
        if token:   # whatever the script printed, the token reaches no log line
            said = said.replace(token, "***")
        lines = said.strip().splitlines()
        print(f"warning: ledger #{entry.seq} is recorded here but not saved (exit {code}: "
              f"{lines[-1] if lines else 'no output'}); the job's save step tries again", file=sys.stderr, flush=True)


def _run_save(script: str, env: dict[str, str]) -> tuple[int, str]:
    """Exit status and output of the save script. It runs in its own process group so that a timeout stops the git
    commands it started too: one left running could still push, or hold the checkout's git locks, when the job's
    save step runs. SIGTERM, not SIGKILL: git removes its lock files on it. Its output is read as UTF-8
    whatever the locale, a byte that is none replaced: it is only shown in a warning, which must not become a
    traceback (git prints paths as they are on disk, a non-UTF-8 file name's bytes included)."""
    with subprocess.Popen(["bash", "-c", script], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, encoding="utf-8", errors="replace",
                          start_new_session=True) as proc:
        try:
            said, _ = proc.communicate(timeout=SAVE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            raise
    return proc.returncode, said


def _odd_field(line: Mapping[str, Any]) -> str | None:
    """What makes a parsed line unlike any entry goldgate writes (deep nesting, a non-text field the release code
    looks things up by, a seq that is not a whole number); None when nothing does."""
    if type(line.get("seq")) is not int:
        return f"seq {str(line.get('seq'))[:40]!r} is not a whole number"
    for name in (*_TEXT_FIELDS, "prev", "mac"):
        if line.get(name) is not None and not isinstance(line[name], str):
            return f"field {name!r} is {type(line[name]).__name__}, not text"
    intent = line.get("intent_seq")
    if intent is not None and type(intent) is not int:
        return f"field 'intent_seq' is {type(intent).__name__}, not a whole number"
    level: list[Any] = [line]
    for _ in range(_MAX_DEPTH):
        level = [v for item in level for v in (item.values() if isinstance(item, dict) else item)
                 if isinstance(v, dict | list)]
        if not level:
            return None
    return f"values are nested more than {_MAX_DEPTH} levels deep"


def _entry(line: Mapping[str, Any], authentic: bool) -> Entry:
    fields = {k: v for k, v in line.items() if k not in _ENTRY_KEYS}
    mac = line.get("mac")
    return Entry(seq=int(line["seq"]), ts=str(line["ts"]), kind=str(line["kind"]), fields=fields,
                 prev=str(line["prev"]), hash=str(line["hash"]), mac=mac if isinstance(mac, str) else None,
                 authentic=authentic)


_TAIL_CHUNK = 1 << 20


def _lines_from_end(fd: int, size: int) -> Iterator[bytes]:
    """The lines of the open file `fd` (of `size` bytes), last first, read backwards a chunk at a time. A line longer
    than `_MAX_LINE` is no entry of ours (`Ledger` refuses the ledger for it): LedgerTampered as soon as that many
    bytes go by without a newline. Skipping it instead read a sparse or binary file put in the ledger's place whole,
    backwards, on every `status` (4 GiB: 11 s)."""
    end, rest = size, b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        lines = (os.pread(fd, end - start, start) + rest).split(b"\n")
        end = start
        rest = lines.pop(0) if start > 0 else b""
        if len(rest) > _MAX_LINE or any(len(line) > _MAX_LINE for line in lines):
            raise LedgerTampered(f"it holds a line longer than {_MAX_LINE} bytes, which goldgate never writes: it "
                                 "has been altered (`goldgate history` names the line)")
        yield from reversed(lines)


def last_golden_run(home: Path, stack: str, image: str, *, passed: bool = False) -> dict[str, Any] | None:
    """The release ledger's last golden run (full or smoke) of `image` on the local `stack`, as promote and rollback
    find it (rollback._smoke_failed: an entry of another target, or one whose MAC does not verify under
    GOLDGATE_LEDGER_KEY, is not it), or None. Read from the end of <home>/ledger.jsonl back to it: `status` reads it
    each time, and a ledger of years is tens of MB, which promote and rollback read and verify whole; an edited line
    (its hash no longer its own) is passed over here, and refused by them. Read `strict`ly, as `last_prod_change`
    reads: a line off the hash chain, or a signed ledger read without GOLDGATE_LEDGER_KEY, is not believed but makes
    the ledger unreadable, as promote and rollback refuse it. None too when the ledger cannot be read: `status`
    answers all the same, and its UNVERIFIED line says the ledger cannot be read (`read_last_golden_run`)."""
    try:
        return read_last_golden_run(home, stack, image, passed=passed)
    except (OSError, StateError):
        return None


def read_last_golden_run(home: Path, stack: str, image: str, *, passed: bool = False) -> dict[str, Any] | None:
    """`last_golden_run`, raising OSError or StateError when the ledger cannot be read, as `last_prod_change` does."""
    def wanted(line: dict[str, Any]) -> bool:
        return line.get("kind") == "golden" and line.get("stack") == stack and line.get("image") == image \
            and line.get("target", "local") == "local" and (not passed or line.get("passed") is True) \
            and judged_image(line)

    return _last_line(home, [b'"kind":"golden"', b'"stack":' + json.dumps(stack).encode(),
                             b'"image":' + json.dumps(image).encode()], wanted, strict=True)


def judged_image(run: Mapping[str, Any] | Entry) -> bool:
    """Whether the golden run `run` (a ledger entry) is a verdict on its image: any run that failed, and a passing run
    of its whole suite (full or smoke). A run of the cases `golden --case` named that passed is not (one case looked
    into): it neither clears a failed smoke run nor verifies the image, as promote's gate takes it."""
    return run.get("passed") is not True or not run.get("only_cases")


def golden_run_named(run: Mapping[str, Any] | Entry) -> str:
    """A golden run as a sentence names it: "smoke run", "full golden run", or "run of 1 case named with --case"
    (a failed one of those was called "full golden run")."""
    only = run.get("only_cases")
    if only:
        count = len(only) if isinstance(only, list) else 0
        smoke = " smoke" if run.get("suite") == "smoke" else ""
        return f"run of {count}{smoke} case{'' if count == 1 else 's'} named with --case"
    return "smoke run" if run.get("suite") == "smoke" else "full golden run"


_VERIFIED = ("promoted", "rolled_back")   # goldgate.release.history.VERIFIED_OUTCOMES, which imports this module


def last_prod_change(home: Path, stack: str, *, verifying: str | None = None,
                     authentic: bool = True) -> dict[str, Any] | None:
    """The release ledger's last line of a promotion or rollback of the local `stack` (an intent or an outcome), or
    with `verifying`, its last outcome that verified that image there (its smoke cases passed with it, as
    goldgate.release.history.verified_releases counts them; with "", of any image). Read from the end as
    `last_golden_run` reads it, for `status`; None when there is none. With `authentic` False, a line whose MAC does
    not verify under GOLDGATE_LEDGER_KEY (one recorded before the key was set) is taken too. Raises OSError or
    StateError when the ledger cannot be read (a missing one is empty), and where promote and rollback would refuse
    what the line says (`_last_line`'s `strict`): a line out of the chain, or a signed ledger read without its key."""
    def wanted(line: dict[str, Any]) -> bool:
        image = line.get("image")
        local = line.get("target", "local" if isinstance(image, str) and image.startswith("local/") else None)
        if line.get("kind") not in ("promotion", "rollback") or line.get("stack", "prod") != stack \
                or local != "local" or line.get("phase") not in ("intent", "outcome"):
            return False
        if verifying is None:
            return True
        return line.get("phase") == "outcome" and line.get("outcome") in _VERIFIED \
            and isinstance(line.get("prod_image"), str) and line.get("prod_image") == (verifying or line["prod_image"])

    # Canonical JSON: a line without these bytes is none of them, and is not parsed (a ledger of years is tens of MB).
    needles = [b'"phase":"'] if verifying is None else [b'"phase":"outcome"', b'"prod_image":"'] + (
        [b'"prod_image":' + json.dumps(verifying).encode()] if verifying else [])
    return _last_line(home, needles, wanted, authentic, strict=True)


_MAC_KEY = b'"mac":"'   # how a signed line (canonical JSON) holds its MAC
# Ledgers this process read whole from the end in `strict` mode and found no signed line in, by path: (device, inode,
# size, mtime) of the file then. `status` reads the ledger several times; an unsigned ledger is read whole once.
_unsigned: dict[Path, tuple[int, int, int, int]] = {}


def _last_line(home: Path, needles: list[bytes], wanted: Callable[[dict[str, Any]], bool],
               authentic: bool = True, strict: bool = False) -> dict[str, Any] | None:
    """The last intact line of <home>/ledger.jsonl that holds every one of `needles` (canonical JSON: no other
    spelling) and that `wanted` takes, read from the end; an edited line (its hash no longer its own), or (`authentic`)
    one whose MAC does not verify under GOLDGATE_LEDGER_KEY, is passed over. None when there is none, or no ledger;
    OSError or StateError when it cannot be read (a bad key, a FIFO or a directory in its place, a line longer than
    any entry).

    `strict` (`status`'s UNVERIFIED line, which must believe no line that promote and rollback refuse): the line found
    must sit in the chain, as `Ledger` checks it (its `prev` the hash of the entry before it, its seq one more, and the
    entry after it chained to it): a line appended with its own hash right but not chained is LedgerTampered, not
    believed. And without GOLDGATE_LEDGER_KEY, a ledger that holds a signed line is LedgerKeyMissing, as
    `Ledger.require_key_if_signed` refuses it: without the key no line in it can be told from one added by hand (a
    MAC copied or made up included)."""
    key = key_from_env() if authentic else None
    unkeyed = strict and key_from_env() is None
    path = home / "ledger.jsonl"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place must not hang status
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateError(f"{path} is not a regular file")
        seen = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)

        def lines() -> Iterator[bytes]:
            for raw in _lines_from_end(fd, info.st_size):
                if unkeyed and _MAC_KEY in raw:
                    raise _signed_without_key(raw)
                yield raw

        read = lines()
        after: bytes | None = None   # the line after the one at hand (read before it), None at the file's end
        unended = False   # whether `after` is the file's last line with no newline after it yet
        for number, raw in enumerate(read):
            if not raw.strip():
                continue
            line = _line_taken(raw, needles, wanted, key)
            if line is None:
                after, unended = raw, number == 0   # the first one read is what follows the last newline
                continue
            if strict:
                _check_chained(line, next((r for r in read if r.strip()), None), after, unended)
                if unkeyed and _unsigned.get(path) != seen:   # a signed line before it refuses the ledger too
                    signed = _signed_line(fd, info.st_size)
                    if signed is not None:
                        raise _signed_without_key(signed)
                    _unsigned[path] = seen
            return line
        if unkeyed:
            _unsigned[path] = seen
    finally:
        os.close(fd)
    return None


def _line_taken(raw: bytes, needles: list[bytes], wanted: Callable[[dict[str, Any]], bool],
                key: bytes | None) -> dict[str, Any] | None:
    """The line `raw` parsed, when it holds every one of `needles`, `wanted` takes it, its hash is its own and (`key`)
    its MAC verifies; else None."""
    if not all(needle in raw for needle in needles):
        return None
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(line, dict) or not wanted(line):
        return None
    body = {k: v for k, v in line.items() if k not in ("hash", "mac")}
    if line.get("hash") != entry_hash(body):
        return None
    mac = line.get("mac")
    if key is not None and not (isinstance(mac, str) and hmac.compare_digest(  # as the ledger compares it
            mac.encode("utf-8", "surrogateescape"), entry_mac(key, body).encode())):
        return None
    return line


def _check_chained(line: dict[str, Any], before: bytes | None, after: bytes | None, after_unended: bool) -> None:
    """LedgerTampered unless the entry `line` follows `before` (the line before it; None: it is the first) and `after`
    (the line after it; None: it is the last) follows it. An unended last line that is no JSON yet is an append in
    progress (`status` reads without the ledger's lock), not a break."""
    what = f"ledger #{str(line.get('seq'))[:20]} ({str(line.get('kind'))[:20]})"
    seq = line.get("seq")
    if before is None:
        chained = _chain_fault(line, GENESIS, 0) is None
    else:
        # The line before is not verified here (only the one at hand is): its hash is computed, not read from it.
        prior = _parsed(before)
        chained = prior is not None and _chain_fault(line, entry_hash(
            {k: v for k, v in prior.items() if k not in ("hash", "mac")}), prior.get("seq")) is None
    # The refusal's first 200 characters are what `status` shows: `goldgate history` names the line and the way out.
    if not chained:
        raise LedgerTampered(f"{what} does not follow the entry before it (its `prev` or `seq`): an entry was "
                             "removed, reordered or inserted (`goldgate history` names it)")
    if after is None:
        return
    following = _parsed(after)
    if following is None and after_unended:
        return
    # `line`'s own hash was checked by `_line_taken`: the one the line after must name.
    if following is None or _chain_fault(following, line.get("hash"), seq) is not None:
        raise LedgerTampered(f"the entry after {what} does not follow it (its `prev` or `seq`): an entry was "
                             "removed, reordered or inserted (`goldgate history` names it)")


def _parsed(raw: bytes) -> dict[str, Any] | None:
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return line if isinstance(line, dict) else None


def _chain_fault(line: Mapping[str, Any], prev_hash: Any, prev_seq: Any) -> str | None:
    """The chain rule, for `Ledger._parse` (the whole ledger, in order) and `_check_chained` (one line read from the
    end, as `status` reads): the entry `line` follows the entry whose hash is `prev_hash` and whose seq is `prev_seq`
    (GENESIS and 0: `line` is the first) when its `prev` is that hash and its seq one more. Which of the two it breaks,
    `prev` first ("prev" or "seq"), or None when it follows."""
    if line.get("prev") != prev_hash:
        return "prev"
    seq = line.get("seq")
    return None if type(seq) is int and type(prev_seq) is int and seq == prev_seq + 1 else "seq"


def _signed_line(fd: int, size: int) -> bytes | None:
    """A line of the open ledger `fd` (of `size` bytes) that carries a MAC (as much of it as the chunk it was found in
    holds), or None. Read backwards a chunk at a time as `_lines_from_end` reads, and as it does, LedgerTampered once
    more than `_MAX_LINE` bytes go by without a newline; but not split into lines: this reads the whole ledger (tens
    of MB after years), and a byte search of each chunk takes a third of the time."""
    end, run, after = size, 0, b""   # run: the bytes before the newline last read; after: the next chunk's first bytes
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        data = os.pread(fd, end - start, start)
        chunk = data + after   # a MAC's key across two chunks is found whole
        found = chunk.find(_MAC_KEY)
        if found >= 0:
            ends = chunk.find(b"\n", found)
            return chunk[chunk.rfind(b"\n", 0, found) + 1:ends if ends >= 0 else len(chunk)]
        first, last = data.find(b"\n"), data.rfind(b"\n")
        if last < 0:
            run += len(data)
        elif run + len(data) - last - 1 > _MAX_LINE or last - first - 1 > _MAX_LINE and max(
                map(len, data[first + 1:last].split(b"\n"))) > _MAX_LINE:   # the line after its last newline, or within
            run = _MAX_LINE + 1
        else:
            run = first   # the end of a line that began in the chunk before
        if run > _MAX_LINE:
            raise LedgerTampered(f"it holds a line longer than {_MAX_LINE} bytes, which goldgate never writes: it "
                                 "has been altered (`goldgate history` names the line)")
        after, end = data[:len(_MAC_KEY) - 1], start
    return None


def _signed_without_key(raw: bytes) -> LedgerKeyMissing:
    seq = (_parsed(raw) or {}).get("seq")
    which = f"ledger #{seq}" if type(seq) is int else "a line"
    return LedgerKeyMissing(f"it is signed with a ledger key ({which} carries a MAC) but {KEY_ENV} is not set: "
                            "without it a line added by hand would be believed; set it to the key CI signs with")
