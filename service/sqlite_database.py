"""The Database port over a local SQLite file in WAL mode, with D1's rules (no BEGIN/COMMIT in SQL;
`batch` is one transaction; D1's size limits) so code that passes here behaves the same on D1.

Group commit, checkpoints off the loop, durability and the writes it refuses: docs/WEBHOOK_SEMANTICS.md,
"The local database".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.ports import Statement, StatementResult, StorageBusy, StorageFull, StorageGone, WriteRefusal

_TRANSACTION_SQL = re.compile(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# Another process's write lock is tried again on the loop, every 1 ms at first, every 50 ms at most: the loop serves
# other requests meanwhile, and a write follows a released lock within 50 ms.
_LOCK_POLL_MIN_S, _LOCK_POLL_MAX_S = 0.001, 0.05
_CHECKPOINT_EVERY = 64  # commits between checkpoints: a few hundred WAL pages, as SQLite's default
# The WAL file's size once it is reset (when a commit finds it all checkpointed). A WAL never shrinks by itself: a
# checkpoint racing the commits that go on meanwhile leaves it partly copied, the WAL grows on until one completes,
# and the file kept that high-water size for the life of the database (10 MB within minutes under load, more as a
# stack serves on for days). Above this, the file is truncated to it at the reset.
WAL_SIZE_LIMIT = 4 * 1024 * 1024

_REFUSAL_CODES = {StorageFull: "storage_full", StorageBusy: "database_busy", StorageGone: "database_unavailable"}
_Write = tuple[tuple[Statement, ...], "asyncio.Future[list[StatementResult]]"]


# D1's limits, where SQLite's own defaults are far higher (1 GB values and statements, 32766 variables):
# a write D1 would refuse fails here the same way, so it is found locally and not first in production.
D1_LIMITS = ((sqlite3.SQLITE_LIMIT_LENGTH, 2_000_000), (sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000),
             (sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100))


def _connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for limit, value in D1_LIMITS:
        conn.setlimit(limit, value)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    return conn


def storage_full(exc: BaseException, path: str) -> StorageFull | None:
    """StorageFull for SQLite's SQLITE_FULL ("database or disk is full": no room on the disk for the database
    or its WAL, or the database at its max_page_count), else None. SQLite has rolled back the statement by
    then."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None or code & 0xFF != sqlite3.SQLITE_FULL:
        return None
    full = StorageFull(f"the database {path} is full ({exc}); free space on its disk: nothing of this write "
                       "was kept")
    full.__cause__ = exc
    return full


_SQLITE_READONLY_DBMOVED = 8 | (4 << 8)  # SQLITE_READONLY_DBMOVED: Python's sqlite3 has no name for it


def storage_refused(exc: BaseException, path: str) -> StorageFull | StorageBusy | StorageGone | None:
    """What SQLite's error `exc` on a write means to the core: StorageFull (see storage_full), StorageBusy
    (SQLITE_BUSY or SQLITE_LOCKED: another connection held the lock past the busy timeout), StorageGone
    (SQLITE_READONLY_DBMOVED: the file was deleted or renamed under the connection), else None."""
    full = storage_full(exc, path)
    if full is not None:
        return full
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    refused: StorageBusy | StorageGone
    if code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        refused = StorageBusy(f"the database {path} is locked by another process past the busy timeout ({exc}): "
                              "nothing of this write was kept")
    elif code == _SQLITE_READONLY_DBMOVED:
        refused = _gone(path, str(exc))
    else:
        return None
    refused.__cause__ = exc
    return refused


def _gone(path: str, why: str) -> StorageGone:
    return StorageGone(f"the database file {path} was deleted or replaced while the service ran ({why}): nothing "
                       "of this write was kept, and no write is taken until the database is restored and the "
                       "service restarted on it (local: docs/D1_DISASTER_RECOVERY.md, \"The database file was "
                       "deleted\")")


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _run(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> StatementResult:
    cursor = conn.execute(sql, tuple(params))
    if cursor.description is None:
        return StatementResult([], max(cursor.rowcount, 0))
    names = [d[0] for d in cursor.description]
    return StatementResult([dict(zip(names, row)) for row in cursor.fetchall()], 0)


class _Checkpointer:
    """Runs `wal_checkpoint(PASSIVE)` on its own connection and thread when asked: readers and
    the writer go on meanwhile, and the fsyncs never block the event loop."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self._conn = _connect(path, busy_timeout_ms)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint {Path(path).name}", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # busy or I/O trouble: the next request tries again
                pass

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=30)
        self._conn.close()


class SqliteDatabase:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 10_000) -> None:
        self.path = str(path)
        self.conn = _connect(self.path, busy_timeout_ms)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer does it, off the loop
        self.conn.execute("PRAGMA foreign_keys = ON")  # D1 enforces foreign keys
        # Metrics scans read large covering indexes: map the file instead of copying pages.
        self.conn.execute("PRAGMA mmap_size = 1073741824")
        self.conn.execute("PRAGMA cache_size = -65536")
        # This connection never waits inside SQLite (see _begin_at_once): the busy timeout is set on it only for
        # what must wait (`_waiting`), a read meeting a rare lock or a write run alone after its group failed.
        self.conn.execute("PRAGMA busy_timeout = 0")
        # A read now opens the WAL and its index on this connection, which keeps them for its life: a file deleted
        # before the service's first write is still copied by rescue_copy (a connection that never read the file
        # failed the copy with "disk I/O error", and the deleted file was lost at the next stop).
        self.conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
        self._commits = 0
        self._checkpointer = _Checkpointer(self.path, busy_timeout_ms)
        self._busy_timeout_ms = busy_timeout_ms
        self._readers: list[sqlite3.Connection] = []  # idle connections for read_many
        self._closed = False
        # The file the connection opened: a commit checks it is still the one at `path` (one stat).
        self._file = _file_id(self.path)
        self._lock_wanted_since: dict[asyncio.AbstractEventLoop, float] = {}  # loop time a group found it taken
        self.last_write_refusal: WriteRefusal | None = None
        self._rescue: tuple[str | None, str | None] | None = None  # (copy saved, why none was), once

    def rescue_copy(self) -> tuple[str | None, str | None]:
        """Once, when the database file was deleted or replaced under the service: a copy of the database this
        connection still has open (the only handle left on a deleted file, with every write up to the refusal) saved
        by SQLite's backup API beside the path, `<db>.rescued-<UTC stamp>`, never over an existing file. Answers
        (its path, None), or (None, why it could not be saved); the same answer every time after the first. Once the
        service stops, the deleted file is gone for good: restore from this copy."""
        with self._lock:
            if self._rescue is None:
                self._rescue = self._save_rescue()
            return self._rescue

    def _save_rescue(self) -> tuple[str | None, str | None]:
        target = f"{self.path}.rescued-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # never over a file there
        except OSError as exc:
            return None, f"{target}: {exc.strerror or exc}"
        try:
            copy = sqlite3.connect(target)
            try:
                self.conn.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, as a backup is
            finally:
                copy.close()
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                os.unlink(target)
            return None, f"{target}: {exc}"
        return target, None

    def close(self) -> None:
        self._checkpointer.close()
        with self._lock:
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self.conn.close()  # the last connection to close checkpoints the WAL into the file

    @staticmethod
    def _check(sql: str) -> None:
        if _TRANSACTION_SQL.match(sql):
            raise ValueError("D1 does not accept BEGIN/COMMIT/ROLLBACK; use Database.batch for a transaction")

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._check(sql)
        try:
            with self._lock:
                try:
                    return _run(self.conn, sql, params).rows
                except sqlite3.OperationalError as exc:
                    if not isinstance(storage_refused(exc, self.path), StorageBusy):
                        raise
                    with self._waiting():  # a statement refused for a lock did nothing: run it again, waiting
                        return _run(self.conn, sql, params).rows
        except sqlite3.OperationalError as exc:  # a read spilling to temporary files on a full disk
            full = storage_full(exc, self.path)
            if full is None:
                raise
            raise full from exc

    async def read_many(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        """The statements at once, on up to one connection and worker thread per CPU (SQLite scans
        without the GIL, so a report's queries share the cores); each worker takes the next
        statement in the given order, so put the longest first. Every worker begins its read
        transaction here, on the caller's thread, before any statement runs: no commit of this
        database (they happen on this thread too) can fall between them, so all read one snapshot."""
        for statement in statements:
            self._check(statement.sql)
        readers = [self._reader() for _ in range(min(len(statements), _CPUS))]
        try:
            for reader in readers:
                reader.execute("BEGIN")
                reader.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()  # the snapshot starts at a read
        except BaseException:
            for reader in readers:
                self._release(reader)
            raise
        pending = collections.deque(enumerate(statements))
        answers: list[list[dict[str, Any]]] = [[] for _ in statements]

        def drain(reader: sqlite3.Connection) -> None:  # on a worker thread
            try:
                while True:
                    try:
                        index, statement = pending.popleft()
                    except IndexError:
                        return
                    answers[index] = _run(reader, statement.sql, statement.params).rows
            finally:  # even if the awaiting caller has gone
                self._release(reader)

        await asyncio.gather(*(asyncio.to_thread(drain, reader) for reader in readers))
        return answers

    def _reader(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if self._readers:
                return self._readers.pop()
        reader = _connect(self.path, self._busy_timeout_ms)
        reader.execute("PRAGMA mmap_size = 1073741824")
        reader.execute("PRAGMA cache_size = -65536")
        return reader

    def _release(self, reader: sqlite3.Connection) -> None:
        if reader.in_transaction:
            reader.execute("COMMIT")  # ends the read transaction
        with self._lock:
            if self._closed:
                reader.close()
            else:
                self._readers.append(reader)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._check(sql)
        return (await self._write((Statement(sql, tuple(params)),)))[0].changes

    async def batch(self, statements: Sequence[Statement]) -> list[StatementResult]:
        for statement in statements:
            self._check(statement.sql)
        return await self._write(tuple(statements))

    async def _write(self, statements: tuple[Statement, ...]) -> list[StatementResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[StatementResult]] = loop.create_future()
        with self._lock:
            queued = self._pending.setdefault(loop, [])
            queued.append((statements, future))
            if len(queued) == 1:  # the first write since the last commit schedules the next one
                loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            outcomes: list[tuple[list[StatementResult] | None, Exception | None]]
            if _file_id(self.path) != self._file:
                # Written on, the old file's writes would be answered as kept and lost at the next start.
                self._lock_wanted_since.pop(loop, None)
                group = self._pending.pop(loop, [])
                outcomes = [(None, _gone(self.path, "it is no longer the file the service opened"))] * len(group)
            else:
                try:
                    began = self._begin_at_once()
                except Exception as exc:  # noqa: BLE001 - I/O trouble: every write of the group is told
                    self._lock_wanted_since.pop(loop, None)  # the next group that meets the lock waits its own time
                    group = self._pending.pop(loop, [])
                    outcomes = [(None, exc)] * len(group)
                else:
                    if not began and self._wait_for_lock(loop):
                        return  # tried again shortly; the writes queued meanwhile join this group
                    self._lock_wanted_since.pop(loop, None)
                    group = self._pending.pop(loop, [])
                    outcomes = self._commit(group, began=True) if began else [(None, self._busy())] * len(group)
            self._commits += 1
            if self._commits % _CHECKPOINT_EVERY == 0:
                self._checkpointer.request()
        refusal: WriteRefusal | None = None
        committed = False
        for (_, future), (results, error) in zip(group, outcomes):
            refused = None if error is None else (
                error if isinstance(error, (StorageGone, StorageBusy)) else storage_refused(error, self.path))
            if refused is not None:
                refusal = WriteRefusal(_REFUSAL_CODES[type(refused)], str(refused), time.time())
            committed = committed or error is None
            if future.done():  # the awaiting request was cancelled; its writes stand, as after a crash
                continue
            if error is not None:
                future.set_exception(refused or error)
            else:
                future.set_result(results)  # type: ignore[arg-type]
        if refusal is not None:
            self.last_write_refusal = refusal
        elif committed:
            self.last_write_refusal = None

    def _begin_at_once(self) -> bool:
        """BEGIN IMMEDIATE without waiting: False when another connection holds the write lock. Waited for here,
        the busy timeout would stop the event loop, and every request with it (reads, /healthz, downloads)."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not isinstance(storage_refused(exc, self.path), StorageBusy):
                raise
            return False
        return True

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        """The connection's statements wait for a lock up to the busy timeout, inside SQLite."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA busy_timeout = 0")

    def _wait_for_lock(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether to try the lock again (shortly, on the loop) rather than refuse the group: until the busy
        timeout has passed since the group first found it taken."""
        now = loop.time()
        since = self._lock_wanted_since.setdefault(loop, now)
        if now - since >= self._busy_timeout_ms / 1000:
            return False
        loop.call_later(min(_LOCK_POLL_MAX_S, max(_LOCK_POLL_MIN_S, (now - since) / 4)), self._flush, loop)
        return True

    def _busy(self) -> StorageBusy:
        return StorageBusy(f"the database {self.path} is locked: another process held its write lock for more than "
                           f"the busy timeout ({self._busy_timeout_ms} ms); nothing of this write was kept")

    def _commit(self, group: list[_Write], began: bool = False
                ) -> list[tuple[list[StatementResult] | None, Exception | None]]:
        """Each write's results or error (`began`: BEGIN IMMEDIATE has been run). The group commits as one
        transaction; if any statement fails, it is rolled back and each write runs in a transaction of its own,
        so one bad write fails alone and the others keep their exact sequential meaning."""
        conn = self.conn
        try:
            if not began:
                with self._waiting():
                    conn.execute("BEGIN IMMEDIATE")
            try:
                results = [[_run(conn, s.sql, s.params) for s in statements] for statements, _ in group]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller, never lost
            if len(group) == 1 or isinstance(storage_refused(exc, self.path), (StorageBusy, StorageGone)):
                # The lock (or the file) refuses every write alike: one by one, each would wait the busy timeout
                # again, with the event loop stopped for all of them.
                return [(None, exc)] * len(group)
            return [self._commit([write])[0] for write in group]
        return [(r, None) for r in results]
