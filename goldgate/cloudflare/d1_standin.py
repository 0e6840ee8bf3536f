"""A loopback stand-in for the D1 REST API (and the Worker settings goldgate reads), backed by SQLite, for
tests and offline drills. Binds 127.0.0.1 only.

Split as moto splits an emulator: `D1Backend` is the model (databases, time-travel bookmarks, export and
import tasks), the route table and `_Handler` the wire format (the v4 envelope, signed URLs served as R2
serves them). What it follows of D1 (developers.cloudflare.com/api/resources/d1/): every committed write makes
a bookmark; export and import are polled tasks that answer 202 `active` while they run; an import blocks its
database and takes effect only once the whole file ran. A fault a test queues answers before the model, as
Cloudflare's edge does, so nothing behind it is applied.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from goldgate.cloudflare.d1 import run_dump
from service.sqltext import file_lines
from service.sqltext import split_sql as split_statements

MAX_SNAPSHOTS = 64
MAX_BODY = 256 * 1024 * 1024
MAX_UPLOAD = 5 * 1024 ** 3  # an import file goes to R2 in one PUT, which R2 allows up to 5 GiB
# The list's documented bounds. The default page size is not documented (unverified): clients here always
# send per_page, so the value only matters to one that does not.
MIN_PER_PAGE, MAX_PER_PAGE, DEFAULT_PER_PAGE = 10, 10_000, 100
SERVE_CHUNK = 64 * 1024


class _Server(ThreadingHTTPServer):
    # socketserver's listen backlog of 5 drops connections a burst opens at once: a test's threads may open more.
    request_queue_size = 128


class D1ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def split_sql(sql: str) -> list[str]:
    try:
        return split_statements(sql)
    except ValueError as exc:
        raise D1ApiError(400, 7500, f"incomplete input: {exc}") from None


@dataclass
class _Snapshot:
    at: float
    bookmark: str
    image: bytes


@dataclass
class _Database:
    uuid: str
    name: str
    created_at: str
    conn: sqlite3.Connection
    snapshots: list[_Snapshot] = field(default_factory=list)
    seq: int = 0
    importing: _Import | None = None  # the import under way, which blocks the database


@dataclass
class _Fault:
    skip: int        # API requests to let through first
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass
class _Task:
    polls_left: int
    bookmark: str
    outcome: dict[str, Any]


@dataclass
class _Import:
    """An import D1 runs after `ingest` answered, polled by the bookmark the database was at when it began
    (the API's `at_bookmark`, which does not change while the import runs)."""
    bookmark: str
    polls_left: int
    ended: threading.Event = field(default_factory=threading.Event)
    ran: int = 0                                # statements run so far
    told: int = 0                               # `ran` as the last answer reported it
    outcome: dict[str, Any] | None = None       # the `result` of a complete import
    error: str | None = None
    stop: bool = False                          # the stand-in is shutting down
    conn: sqlite3.Connection | None = None      # the copy the import runs on, to interrupt it


@dataclass(frozen=True)
class _ImportAnswer:
    """Where an import stands, answered once it has ended or `import_wait_s` has passed: the wait is outside
    the backend's lock, which the import needs to finish."""
    task: _Import


class _Stopped(Exception):
    """The stand-in stopped while an import ran."""


@dataclass(frozen=True)
class _Upload:
    """An import file as uploaded to the signed URL: kept on disk, as R2 keeps an object."""
    path: Path
    md5: str


@dataclass(frozen=True)
class _Page:
    """A list answer: the envelope carries `result_info` beside `result`."""
    result: list[dict[str, Any]]
    info: dict[str, int]


class D1Backend:
    """The model: databases and their history. Thread-safe through one lock."""

    def __init__(self, account_id: str, clock: Callable[[], float] = time.time, export_polls: int = 2,
                 import_polls: int = 1, import_wait_s: float = 1.0) -> None:
        self.account_id = account_id
        self.clock = clock
        self.export_polls = export_polls
        # An import answers `active` to its ingest and polls this many times at least, however fast it ran,
        # so a test sees the client poll; past those, an answer waits up to `import_wait_s` for the import to
        # end, as D1 delays its answer to an ingest (about a second, wrangler says) so a small file needs no
        # poll.
        self.import_polls = import_polls
        self.import_wait_s = import_wait_s
        self.lock = threading.RLock()
        self.databases: dict[str, _Database] = {}
        self.exports: dict[tuple[str, str], _Task] = {}
        self.imports: dict[tuple[str, str], _Import] = {}
        self.hold_imports: threading.Event | None = None  # imports wait for it to be set: a test's hook
        self._import_threads: list[threading.Thread] = []
        self.uploads: dict[str, _Upload] = {}        # filename -> SQL file uploaded for import
        self.signed: dict[str, Path] = {}            # token -> exported SQL, a file as R2 holds an object
        self.fail_next_import: str | None = None      # a test's way to make D1 refuse an import
        self.cut_next_download_at: int | None = None  # close the next export download after this many bytes
        self.cut_next_upload_at: int | None = None    # drop the next import upload after this many bytes
        self.signed_urls_expire = False               # answer signed export URLs as R2 does once expired
        # database uuid -> bytes added to its reported size: near D1's 10 GB cap without writing gigabytes
        self.size_padding: dict[str, int] = {}
        self.origin = ""                               # where signed URLs point; set by the HTTP shell
        self._export_dir: Path | None = None

    # -- databases ---------------------------------------------------------------------------
    def create(self, name: str) -> _Database:
        if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,63}$", name):
            raise D1ApiError(400, 7400, "database name must be lowercase letters, digits and dashes")
        if any(d.name == name for d in self.databases.values()):
            raise D1ApiError(400, 7502, f"a database with the name {name} already exists")
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        # D1's own internal table; it also gives an empty database a page, so it can be serialized.
        conn.execute("CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID")
        db = _Database(str(uuid.uuid4()), name, _iso(self.clock()), conn)
        self.databases[db.uuid] = db
        self._snapshot(db)
        return db

    def get(self, database_id: str) -> _Database:
        db = self.databases.get(database_id)
        if db is None:
            raise D1ApiError(404, 7404, f"database {database_id} not found")
        return db

    def delete(self, database_id: str) -> None:
        self.get(database_id).conn.close()
        del self.databases[database_id]

    def list_page(self, query: dict[str, str]) -> _Page:
        """One page of the account's databases, oldest first; `name` searches (a substring match: whether
        Cloudflare matches whole names only is unverified, so callers compare names themselves)."""
        page = _bounded_int(query, "page", 1, 1, None)
        per_page = _bounded_int(query, "per_page", DEFAULT_PER_PAGE, MIN_PER_PAGE, MAX_PER_PAGE)
        found = [d for d in self.databases.values() if not query.get("name") or query["name"] in d.name]
        items = [self.db_json(d) for d in found[(page - 1) * per_page:page * per_page]]
        return _Page(items, {"page": page, "per_page": per_page, "count": len(items), "total_count": len(found)})

    def db_json(self, db: _Database) -> dict[str, Any]:
        """A database as GET .../database/<id> and the list describe it."""
        return {"uuid": db.uuid, "name": db.name, "created_at": db.created_at, "version": "production",
                "file_size": self.size(db), "num_tables": db.conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]}

    def _snapshot(self, db: _Database) -> str:
        db.seq += 1
        image = db.conn.serialize()
        digest = hashlib.md5(image, usedforsecurity=False).hexdigest()
        bookmark = f"{db.seq:08x}-00000000-{len(image) & 0xffffffff:08x}-{digest}"
        db.snapshots.append(_Snapshot(self.clock(), bookmark, image))
        del db.snapshots[:-MAX_SNAPSHOTS]
        return bookmark

    def current_bookmark(self, db: _Database) -> str:
        return db.snapshots[-1].bookmark

    def size(self, db: _Database) -> int:
        """The database's size as D1 reports it: its SQLite image's bytes (plus the test's `size_padding`)."""
        pages = db.conn.execute("PRAGMA page_count").fetchone()[0]
        return pages * db.conn.execute("PRAGMA page_size").fetchone()[0] + self.size_padding.get(db.uuid, 0)

    # -- SQL ---------------------------------------------------------------------------------
    def execute(self, db: _Database, sql: str, params: list[Any], raw: bool = False) -> list[dict[str, Any]]:
        """/query's result: each statement's rows as objects; `raw` (/raw) as {columns, rows}, rows arrays."""
        # The closing ';' on a line of its own: after a trailing "-- comment" it would be part of the comment.
        statements = split_sql(sql if sql.rstrip().endswith(";") else sql + "\n;")
        if not statements:
            raise D1ApiError(400, 7500, "no SQL statements given")
        if params and len(statements) > 1:
            raise D1ApiError(400, 7500, "params are only allowed with a single statement")
        if len(params) > 100:
            raise D1ApiError(400, 7500, "too many SQL variables (D1 allows 100 bound parameters)")
        results = []
        before = db.conn.total_changes
        db.conn.execute("SAVEPOINT d1_batch")
        try:
            for stmt in statements:
                if re.match(r"^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", stmt, re.IGNORECASE):
                    raise D1ApiError(400, 7500, "D1 does not allow transaction statements; the batch is one "
                                                "transaction already")
                started = time.perf_counter()
                changes_before = db.conn.total_changes
                cur = db.conn.execute(stmt, params)
                cols = [c[0] for c in cur.description or ()]
                fetched = cur.fetchall()
                changes = db.conn.total_changes - changes_before
                took = (time.perf_counter() - started) * 1e3
                rows: Any = ({"columns": cols, "rows": [list(r) for r in fetched]} if raw
                             else [dict(zip(cols, r, strict=True)) for r in fetched])
                # d1_query-meta as documented (served_by_colo/region omitted: there is no colo here).
                results.append({"results": rows, "success": True, "meta": {
                    "changed_db": changes > 0, "changes": changes, "duration": took,
                    "last_row_id": cur.lastrowid or 0, "rows_read": len(fetched), "rows_written": changes,
                    "served_by_primary": True, "size_after": self.size(db),
                    "timings": {"sql_duration_ms": took}}})
            db.conn.execute("RELEASE d1_batch")
        except sqlite3.Error as exc:
            _undo(db.conn, "d1_batch")
            raise D1ApiError(400, 7500, f"{exc}: SQLITE_ERROR") from None
        except D1ApiError:
            _undo(db.conn, "d1_batch")
            raise
        if db.conn.total_changes != before or any(
                re.match(r"^\s*(CREATE|DROP|ALTER)\b", s, re.IGNORECASE) for s in statements):
            self._snapshot(db)
        return results

    def write_dump(self, db: _Database, path: Path) -> None:
        """SQL text like D1's export (no transaction statements, foreign keys deferred), written line by
        line so a large database is never held whole in memory."""
        with path.open("w", encoding="utf-8", newline="\n") as out:
            out.write("PRAGMA defer_foreign_keys=TRUE;\n")
            for line in db.conn.iterdump():
                if line in ("BEGIN TRANSACTION;", "COMMIT;") or "_cf_KV" in line:
                    continue
                out.write(line + "\n")

    def export_dir(self) -> Path:
        """Where exports and uploaded import files are kept (R2, for the real service)."""
        if self._export_dir is None:
            self._export_dir = Path(tempfile.mkdtemp(prefix="d1-standin-files-"))
        return self._export_dir

    def close(self) -> None:
        with self.lock:
            running = [task for task in self.imports.values() if not task.ended.is_set()]
            for task in running:
                task.stop = True
                if task.conn is not None:
                    task.conn.interrupt()
        if self.hold_imports is not None:
            self.hold_imports.set()
        for thread in self._import_threads:
            thread.join(5)
        if self._export_dir is not None:
            shutil.rmtree(self._export_dir, ignore_errors=True)
            self._export_dir = None

    # -- export ------------------------------------------------------------------------------
    def export(self, db: _Database, current_bookmark: str | None) -> dict[str, Any]:
        if current_bookmark is None:
            bookmark = self.current_bookmark(db)
            self.exports[(db.uuid, bookmark)] = _Task(self.export_polls, bookmark, {})
        else:
            bookmark = current_bookmark
        task = self.exports.get((db.uuid, bookmark))
        if task is None:
            return {"success": False, "error": f"no export in progress at bookmark {bookmark}"}
        if task.polls_left > 0:
            task.polls_left -= 1
            return {"success": True, "type": "export", "at_bookmark": bookmark, "status": "active",
                    "messages": ["Generating SQL dump"]}
        token = secrets.token_urlsafe(24)
        path = self.export_dir() / f"{token}.sql"
        self.write_dump(db, path)
        self.signed[token] = path
        del self.exports[(db.uuid, bookmark)]
        return {"success": True, "type": "export", "at_bookmark": bookmark, "status": "complete",
                "messages": ["Uploaded part 1", "Export complete"],
                "result": {"filename": f"{db.name}-{bookmark}.sql", "signed_url": f"{self.origin}/_signed/exports/{token}"}}

    # -- import ------------------------------------------------------------------------------
    def import_action(self, db: _Database, body: dict[str, Any]) -> dict[str, Any] | _ImportAnswer:
        action = body.get("action")
        if action == "init":
            etag = body.get("etag")
            if not isinstance(etag, str) or not re.match(r"^[0-9a-f]{32}$", etag):
                raise D1ApiError(400, 7400, "etag must be the md5 hex of the file")
            filename = f"{db.uuid}-{etag}.sql"  # "derived from the database ID and etag" (the API)
            upload = self.uploads.get(filename)
            if upload is not None and upload.md5 == etag:
                # The etag is "used to check if it already exists": a file already uploaded is not asked for
                # again, and init starts its import, answering as ingest does (wrangler: "File already
                # uploaded. Processing.").
                return self._start_import(db, upload)
            return {"success": True, "filename": filename, "upload_url": f"{self.origin}/_signed/imports/{filename}"}
        if action == "ingest":
            filename, etag = body.get("filename"), body.get("etag")
            upload = self.uploads.get(filename or "")
            if upload is None:
                raise D1ApiError(400, 7400, f"file {filename} was not uploaded")
            if upload.md5 != etag:
                raise D1ApiError(400, 7400, "uploaded file does not match its etag")
            return self._start_import(db, upload)
        if action == "poll":
            task = self.imports.get((db.uuid, str(body.get("current_bookmark") or "")))
            if task is None:
                return {"success": False, "error": "Not currently importing anything."}
            return _ImportAnswer(task)
        raise D1ApiError(400, 7400, "action must be one of init, ingest, poll")

    def _start_import(self, db: _Database, upload: _Upload) -> _ImportAnswer:
        _refuse_while_importing(db)
        task = _Import(self.current_bookmark(db), self.import_polls)
        self.imports[(db.uuid, task.bookmark)] = task
        if self.fail_next_import:
            task.error, self.fail_next_import = self.fail_next_import, None
            task.ended.set()
            return _ImportAnswer(task)
        db.importing = task
        thread = threading.Thread(target=self._import, args=(db, upload.path, task),
                                  name="d1-standin-import", daemon=True)
        self._import_threads.append(thread)
        thread.start()
        return _ImportAnswer(task)

    def _import(self, db: _Database, path: Path, task: _Import) -> None:
        """Run an uploaded file on a copy of the database, in one transaction, rows a few hundred to a
        statement (d1.run_dump); the copy takes the database's place only once the whole file ran."""
        started = time.perf_counter()
        # No statement cache: each merged INSERT is new, and a cache would keep the last 128 (run_dump).
        copy = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None, cached_statements=0)
        try:
            with self.lock:
                copy.deserialize(db.conn.serialize())
                max_pages = int(db.conn.execute("PRAGMA max_page_count").fetchone()[0])
                task.conn = copy
            copy.execute("PRAGMA foreign_keys = ON")
            copy.execute(f"PRAGMA max_page_count = {max_pages}")  # a full database stays full in its copy
            if self.hold_imports is not None:
                self.hold_imports.wait()
            copy.execute("BEGIN")
            queries = run_dump(copy, file_lines(path), _refuse_transactions,
                               lambda ran: _count_ran(task, ran))
            copy.execute("COMMIT")
        except (sqlite3.Error, D1ApiError, ValueError, UnicodeDecodeError, OSError, _Stopped) as exc:
            copy.close()
            self._end_import(db, task, error=_import_error(exc))
            return
        with self.lock:
            if task.stop or self.databases.get(db.uuid) is not db:  # stopped, or the database deleted
                copy.close()
                self._end_import(db, task, error="the import was stopped: the database went away")
                return
            replaced, db.conn = db.conn, copy
            replaced.close()
            changes = copy.total_changes
            task.outcome = {"final_bookmark": self._snapshot(db), "num_queries": queries,
                            "meta": {"changed_db": True, "changes": changes,
                                     "duration": (time.perf_counter() - started) * 1e3,
                                     "last_row_id": copy.execute("SELECT last_insert_rowid()").fetchone()[0],
                                     "rows_read": 0, "rows_written": changes, "size_after": self.size(db)}}
            self._end_import(db, task)

    def _end_import(self, db: _Database, task: _Import, error: str | None = None) -> None:
        with self.lock:
            task.error, task.conn = error, None
            if db.importing is task:
                db.importing = None
            task.ended.set()

    def import_answer(self, task: _Import) -> dict[str, Any]:
        """`active` until the import has ended and answered `import_polls` times, with what ran since the last
        answer; then `complete` with its result, or `error` with its reason."""
        answer: dict[str, Any] = {"success": True, "type": "import", "at_bookmark": task.bookmark}
        if not task.ended.is_set() or task.polls_left > 0:
            task.polls_left = max(0, task.polls_left - 1)
            # D1's wording of its progress lines is unverified; these say what ran since the last answer.
            messages = [f"Imported {task.ran} statements"] if task.ran > task.told else ["Importing"]
            task.told = task.ran
            return {**answer, "status": "active", "messages": messages}
        if task.error is not None:
            # The API documents `error` (a string, "only present when status = 'error'"); the client reads it.
            return {**answer, "status": "error", "error": task.error, "messages": []}
        return {**answer, "status": "complete", "messages": ["Import complete"], "result": task.outcome}

    # -- time travel -------------------------------------------------------------------------
    def bookmark_at(self, db: _Database, timestamp: str | None) -> str:
        if timestamp is None:
            return self.current_bookmark(db)
        at = _parse_ts(timestamp)
        candidates = [s for s in db.snapshots if s.at <= at]
        if not candidates:
            raise D1ApiError(400, 7400, f"no bookmark at or before {timestamp} (outside the retention window)")
        return candidates[-1].bookmark

    def restore(self, db: _Database, bookmark: str | None, timestamp: str | None) -> dict[str, Any]:
        if bool(bookmark) == bool(timestamp):
            raise D1ApiError(400, 7400, "give exactly one of bookmark or timestamp")
        target = bookmark or self.bookmark_at(db, timestamp)
        snap = next((s for s in db.snapshots if s.bookmark == target), None)
        if snap is None:
            raise D1ApiError(400, 7400, f"unknown bookmark {target}")
        previous = self.current_bookmark(db)
        db.conn.deserialize(snap.image)
        db.conn.execute("PRAGMA foreign_keys = ON")
        new = self._snapshot(db)
        return {"bookmark": new, "previous_bookmark": previous,
                "message": f"Restored database {db.uuid} to bookmark {target}"}


@dataclass
class WorkerScripts:
    """The deployed Workers a test declares: name -> its crons, as `pulumi up` left them, and name -> its
    plain-text bindings. `readable` False: the token lacks Workers Scripts Read."""

    schedules: dict[str, list[str]] = field(default_factory=dict)
    plain_text: dict[str, dict[str, str]] = field(default_factory=dict)
    readable: bool = True

    def call(self, method: str, script: str, what: str, body: Any) -> Any:
        if not self.readable:
            raise D1ApiError(403, 10000, "Authentication error")
        if script not in self.schedules:
            raise D1ApiError(404, 10007, "This Worker does not exist on your account.")
        if what == "settings" and method == "GET":
            bindings = [{"type": "plain_text", "name": k, "text": v} for k, v in self.plain_text.get(script, {}).items()]
            return {"compatibility_date": "2025-06-01", "bindings": [*bindings, {"type": "secret_text",
                                                                              "name": "API_TOKEN"}]}
        if what == "schedules" and method == "PUT":
            if not isinstance(body, list) or not all(isinstance(i, dict) and isinstance(i.get("cron"), str)
                                                     for i in body):
                raise D1ApiError(400, 10021, 'expected [{"cron": "<expression>"}, ...]')
            self.schedules[script] = [item["cron"] for item in body]
        elif method != "GET":
            raise D1ApiError(405, 10000, "method not allowed")
        stamp = "2026-11-01T00:00:00.000000Z"
        return {"schedules": [{"cron": c, "created_on": stamp, "modified_on": stamp} for c in self.schedules[script]]}


class D1StandIn:
    """The HTTP shell: `with D1StandIn(token) as d1:` serves `d1.api_base` until the block ends."""

    def __init__(self, api_token: str, account_id: str | None = None, **backend: Any) -> None:
        self.api_token = api_token
        self.backend = D1Backend(account_id or secrets.token_hex(16), **backend)
        self.requests: list[tuple[str, str]] = []
        self.faults: list[_Fault] = []
        self.workers = WorkerScripts()
        handler = _handler_for(self)
        self._server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="d1-standin",
                                        daemon=True)
        self.backend.origin = self.origin

    @property
    def account_id(self) -> str:
        return self.backend.account_id

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_base(self) -> str:
        return f"{self.origin}/client/v4"

    def rate_limit(self, retry_after_s: int, *, times: int = 1, after: int = 0) -> None:
        """Answer the next `times` API requests (after letting `after` through) as Cloudflare's API rate
        limit does: 429, `Retry-After` in whole seconds, error code 971 in the envelope."""
        body = json.dumps({"success": False, "errors": [
            {"code": 971, "message": "Please wait and consider throttling your request speed"}],
            "messages": [], "result": None}).encode()
        for _ in range(times):
            self.fail_with(429, body, {"Content-Type": "application/json", "Retry-After": str(retry_after_s)},
                           after=after)

    def fail_with(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, after: int = 0) -> None:
        """Answer one API request (after letting `after` through) with this raw response, e.g. the HTML
        502 page Cloudflare's edge serves when the API behind it fails."""
        self.faults.append(_Fault(after, status, body, dict(headers or {"Content-Type": "text/html"})))

    def _next_fault(self) -> _Fault | None:
        with self.backend.lock:
            if not self.faults:
                return None
            if self.faults[0].skip > 0:
                self.faults[0].skip -= 1
                return None
            return self.faults.pop(0)

    def start(self) -> D1StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.backend.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


_DB_PATH = re.compile(r"^/client/v4/accounts/(?P<acct>[^/]+)/d1/database(?:/(?P<db>[^/]+)(?P<rest>/.*)?)?$")
_SCRIPT_PATH = re.compile(r"^/client/v4/accounts/(?P<acct>[^/]+)/workers/scripts/(?P<script>[^/]+)/"
                          r"(?P<what>schedules|settings)$")


# -- routes: each D1 endpoint over the backend, called under the backend's lock ------------------------
_AccountRoute = Callable[[D1Backend, dict[str, Any], dict[str, str]], Any]
_DatabaseRoute = Callable[[D1Backend, _Database, dict[str, Any], dict[str, str]], Any]


def _create_database(backend: D1Backend, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    return backend.db_json(backend.create(body.get("name")))


def _list_databases(backend: D1Backend, body: dict[str, Any], query: dict[str, str]) -> _Page:
    return backend.list_page(query)


def _get_database(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    return backend.db_json(db)


def _delete_database(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> None:
    backend.delete(db.uuid)


def _run_query(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    _refuse_while_importing(db)
    return backend.execute(db, *_statement(body))


def _run_raw(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    _refuse_while_importing(db)
    return backend.execute(db, *_statement(body), raw=True)


def _statement(body: dict[str, Any]) -> tuple[str, list[str]]:
    sql, params = body.get("sql"), body.get("params") or []
    # The API documents params as an array of strings, bound as TEXT: a number is refused here, so a client
    # relying on D1 to keep it a number is caught before it meets the real service.
    if not isinstance(sql, str) or not isinstance(params, list) or not all(
            isinstance(p, str) for p in params):
        raise D1ApiError(400, 7400, "sql must be a string and params an array of strings")
    return sql, params


def _export(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    _refuse_while_importing(db)
    if body.get("output_format") != "polling":
        raise D1ApiError(400, 7400, "output_format must be 'polling'")
    return backend.export(db, body.get("current_bookmark"))


def _import_action(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    return backend.import_action(db, body)


def _get_bookmark(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    return {"bookmark": backend.bookmark_at(db, query.get("timestamp"))}


def _restore(backend: D1Backend, db: _Database, body: dict[str, Any], query: dict[str, str]) -> Any:
    _refuse_while_importing(db)
    return backend.restore(db, query.get("bookmark"), query.get("timestamp"))


_ACCOUNT_ROUTES: dict[str, _AccountRoute] = {"POST": _create_database, "GET": _list_databases}
_DATABASE_ROUTES: dict[tuple[str, str], _DatabaseRoute] = {
    ("GET", ""): _get_database,
    ("DELETE", ""): _delete_database,
    ("POST", "/query"): _run_query,
    ("POST", "/raw"): _run_raw,
    ("POST", "/export"): _export,
    ("POST", "/import"): _import_action,
    ("GET", "/time_travel/bookmark"): _get_bookmark,
    ("POST", "/time_travel/restore"): _restore,
}


def _route(backend: D1Backend, method: str, db_id: str | None, rest: str, body: Any,
           query: dict[str, str]) -> Any:
    if not isinstance(body, dict):
        raise D1ApiError(400, 7400, "request body must be a JSON object")
    if db_id is None:
        on_account = _ACCOUNT_ROUTES.get(method)
        if on_account is None:
            raise D1ApiError(405, 7400, "method not allowed")
        return on_account(backend, body, query)
    db = backend.get(db_id)  # an unknown database is 404 7404 before an unknown route is 7003
    on_database = _DATABASE_ROUTES.get((method, rest))
    if on_database is None:
        raise D1ApiError(404, 7003, "No route for the URI")
    return on_database(backend, db, body, query)


# -- the HTTP shell: auth, queued faults, the v4 envelope, and the signed URLs R2 would serve -------------
class _Handler(BaseHTTPRequestHandler):
    standin: D1StandIn  # set per stand-in by _handler_for

    @property
    def backend(self) -> D1Backend:
        return self.standin.backend

    def log_message(self, *_: Any) -> None:  # quiet: tests read results, not access logs
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _envelope(self, status: int, result: Any = None, errors: list[dict[str, Any]] | None = None) -> None:
        body: dict[str, Any] = {"success": not errors, "errors": errors or [], "messages": []}
        if isinstance(result, _Page):
            body.update(result=result.result, result_info=result.info)
        else:
            body["result"] = result
        self._send(status, json.dumps(body).encode())

    def _content_length(self) -> int | None:
        """The request's Content-Length, or None when it is no length (a word, a sign, several values): as an HTTP
        server refuses such a request, the stand-in answers 400 and closes the connection, whose body it cannot
        delimit."""
        raw = (self.headers.get("Content-Length") or "0").strip()
        # 18 digits hold any length a body can have; more would reach int()'s limit on digits (4,300) and raise.
        if not raw.isascii() or not raw.isdigit() or len(raw.lstrip("0")) > 18:
            self.close_connection = True
            return None
        return int(raw)

    def _body(self) -> bytes:
        length = self._content_length()
        if length is None:
            raise D1ApiError(400, 7400, "Content-Length is not a number of bytes")
        if length > MAX_BODY:
            raise D1ApiError(413, 7400, "request body too large")
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        raw = self._body()
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise D1ApiError(400, 7400, "request body is not JSON") from None

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.standin.requests.append((method, url.path))
        try:
            if url.path.startswith("/_signed/"):
                return self._signed(method, url.path)
            fault = self.standin._next_fault()
            if fault is not None:
                return self._send_fault(fault)
            self._envelope(*self._api_call(method, url.path, url.query))
        except D1ApiError as exc:
            self._envelope(exc.status, None, [{"code": exc.code, "message": exc.message}])

    def _send_fault(self, fault: _Fault) -> None:
        self._body()  # drain it: closing on an unread body can reset the connection
        self._send(fault.status, fault.body, fault.headers.get("Content-Type", "text/html"),
                   {k: v for k, v in fault.headers.items() if k != "Content-Type"})

    def _authorize(self, account_id: str) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.standin.api_token}":
            raise D1ApiError(403, 10000, "Authentication error")
        if account_id != self.backend.account_id:
            raise D1ApiError(403, 10000, "Authentication error: not a member of this account")

    def _api_call(self, method: str, path: str, query_string: str) -> tuple[int, Any]:
        """The status and `result` of one API request."""
        match = _DB_PATH.match(path) or _SCRIPT_PATH.match(path)
        if not match:
            raise D1ApiError(404, 7003, "No route for the URI")
        self._authorize(match["acct"])
        query = {k: v[0] for k, v in parse_qs(query_string).items()}
        body = self._json_body()
        with self.backend.lock:
            if match.re is _SCRIPT_PATH:
                return 200, self.standin.workers.call(method, match["script"], match["what"], body)
            result = _route(self.backend, method, match["db"], match["rest"] or "", body, query)
        if isinstance(result, _ImportAnswer):
            return self._import_status(result.task)
        if match["rest"] == "/export" and isinstance(result, dict) and result.get("status") == "active":
            return 202, result  # the API: 202 "Polled successfully, task is currently running"
        return 200, result

    def _import_status(self, task: _Import) -> tuple[int, dict[str, Any]]:
        if task.polls_left == 0:  # the answer depends on whether it ends meanwhile
            task.ended.wait(self.backend.import_wait_s)
        with self.backend.lock:
            result = self.backend.import_answer(task)
        return (202 if result["status"] == "active" else 200), result  # 202: "task is currently running"

    def _signed(self, method: str, path: str) -> None:
        # Signed URLs carry their own authority (R2 presigned), so no API token here.
        backend = self.backend
        kind, _, name = path[len("/_signed/"):].partition("/")
        with backend.lock:
            if kind == "exports" and method == "GET" and name in backend.signed:
                if backend.signed_urls_expire:
                    return self._send(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired"
                                           b"</Message></Error>", "application/xml")
                cut, backend.cut_next_download_at = backend.cut_next_download_at, None
                exported = backend.signed[name]
            else:
                exported = None
            if kind == "imports" and method == "PUT":
                cut, backend.cut_next_upload_at = backend.cut_next_upload_at, None
                spool = backend.export_dir()
        if exported is not None:
            return self._serve_file(exported, cut)
        if kind == "imports" and method == "PUT":
            return self._receive_upload(name, spool, cut)
        self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")

    def _receive_upload(self, name: str, spool: Path, cut_at: int | None) -> None:
        """Store the PUT body under `name` only once the whole announced length is in, as R2 stores an object
        only when its upload completes."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length") is None:
            self.close_connection = True
            return self._send(411, b"<Error><Code>MissingContentLength</Code></Error>", "application/xml")
        length = self._content_length()
        if length is None:
            return self._send(400, b"<Error><Code>InvalidArgument</Code></Error>", "application/xml")
        if length > MAX_UPLOAD:
            self.close_connection = True
            return self._send(400, b"<Error><Code>EntityTooLarge</Code></Error>", "application/xml")
        received = self._spool(spool / f"import-{secrets.token_hex(8)}.sql", length, cut_at)
        if received is None:
            return None
        with self.backend.lock:
            old = self.backend.uploads.get(name)
            self.backend.uploads[name] = received
        if old is not None:
            old.path.unlink(missing_ok=True)
        return self._send(200, b"", "text/plain", {"ETag": f'"{received.md5}"'})

    def _spool(self, partial: Path, length: int, cut_at: int | None) -> _Upload | None:
        """Write the body to `partial` as it arrives, hashing it; None (and no file) when it ends short."""
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        try:
            with partial.open("wb") as out:
                while received < length:
                    want = min(SERVE_CHUNK, length - received)
                    if cut_at is not None and received + want > cut_at:
                        want = max(0, cut_at - received)
                    chunk = self.rfile.read(want) if want else b""
                    if not chunk:  # the client went away, or the test's fault cut it here
                        self.close_connection = True
                        partial.unlink(missing_ok=True)
                        return None
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
        except OSError:
            self.close_connection = True
            partial.unlink(missing_ok=True)
            return None
        return _Upload(partial, digest.hexdigest())

    def _serve_file(self, path: Path, cut_at: int | None) -> None:
        """The whole length announced, then the body in chunks; `cut_at` drops the connection part way,
        as a network failure mid-download does."""
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/sql")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        with path.open("rb") as f:
            while chunk := f.read(SERVE_CHUNK):
                if cut_at is not None and sent + len(chunk) > cut_at:
                    self.wfile.write(chunk[:max(0, cut_at - sent)])
                    self.close_connection = True
                    return
                self.wfile.write(chunk)
                sent += len(chunk)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def _handler_for(standin: D1StandIn) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"standin": standin})


def _refuse_while_importing(db: _Database) -> None:
    # "Imports block the D1 for their duration" (the API); the status and code D1 answers with are unverified.
    if db.importing is not None:
        raise D1ApiError(400, 7500, f"database {db.uuid} is being imported into: imports block the D1 for "
                                    "their duration; try again once the import is complete")


def _refuse_transactions(statement: str) -> None:
    if re.match(r"^\s*(BEGIN|COMMIT|END|ROLLBACK)\b", statement, re.IGNORECASE):
        raise D1ApiError(400, 7500, "imports may not contain transaction statements")


def _count_ran(task: _Import, ran: int) -> None:
    task.ran = ran
    if task.stop:
        raise _Stopped


def _import_error(exc: Exception) -> str:
    """An import's failure as D1 reports it."""
    if isinstance(exc, D1ApiError):
        return exc.message
    if isinstance(exc, ValueError) and not isinstance(exc, UnicodeDecodeError):
        return f"incomplete input: {exc}"  # the file ends inside a statement
    if isinstance(exc, _Stopped):
        return "the import was stopped: the D1 stand-in shut down"
    return str(exc)


def _undo(conn: sqlite3.Connection, savepoint: str) -> None:
    """Roll a failed batch or import back to `savepoint`, as D1 does. SQLite has already ended the transaction
    itself after some errors (SQLITE_FULL: the disk, or here max_page_count): the savepoint is gone then, and
    rolling back to it would raise "no such savepoint" in place of the error D1 reports."""
    if conn.in_transaction:
        conn.execute(f"ROLLBACK TO {savepoint}")
        conn.execute(f"RELEASE {savepoint}")


def _bounded_int(query: dict[str, str], key: str, default: int, low: int, high: int | None) -> int:
    if key not in query:
        return default
    try:
        value = int(query[key])
    except ValueError:
        raise D1ApiError(400, 7400, f"{key} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise D1ApiError(400, 7400, f"{key} must be at least {low}" + (f" and at most {high}" if high else ""))
    return value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_ts(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise D1ApiError(400, 7400, f"timestamp {text!r} is not ISO 8601") from None
