"""D1 over the Cloudflare REST API: databases, queries, SQL export/import and Time Travel.

Request and response shapes follow the v4 API as wrangler drives it: export is
`POST .../export {"output_format": "polling"}` repeated with `current_bookmark` until
`status == "complete"`, then a GET of `result.signed_url`, streamed to a file (a database holds up to
10 GB); import is `init` (md5 etag) -> PUT the file to `upload_url` (ETag must echo the md5) ->
`ingest` -> `poll` until complete, the file hashed and uploaded a chunk at a time (an `init` for a file
D1 already holds answers as a poll does, the import started). A running export or import answers HTTP 202
with `status: "active"`; an ended one 200 with `complete` (and its `result`) or `error` (and `error`, a
string). Listing databases reads every page of the answer.
A database's size is the `file_size` the API documents on GET .../d1/database/<id> ("The D1
database's size, in bytes"): what D1's cap is measured against.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from goldgate.bounded_http import (
    DeadlinePassed,
    format_seconds,
    send_bounded,
    tls_context,
    transfer_deadline_s,
)
from goldgate.cloudflare.api import CloudflareApi, path_segment
from goldgate.cloudflare.errors import CloudflareError, D1OperationFailed
from service.sqltext import iter_sql

PAGE_ROWS = 5_000  # rows per /query page when streaming a table; well under D1's response limits
# Databases per list page (the API allows 10..10000), and a bound on pages: 100 x 1000 is twice the
# most databases an account may hold, so reaching it means the answer is not paging as documented.
LIST_PER_PAGE = 1_000
MAX_LIST_PAGES = 100
# D1's limit on the Workers Paid plan (a Free plan's database stops at 500 MB): an export without a
# Content-Length is given time for this, and the checklist measures a database's room against it.
MAX_DATABASE_BYTES = 10 * 1000 ** 3
TRANSFER_ANSWER_BYTES = 1024 * 1024  # what of R2's answer to an upload is read (its ETag is in the headers)
KEY_ALIAS = "goldgate_page_key_"  # the column names stream_keyed reads each row's key under


@dataclass(frozen=True)
class D1Database:
    """A database as the API describes it. The list documents uuid, name, created_at, version and
    jurisdiction only; GET and create add file_size and num_tables."""
    uuid: str
    name: str
    created_at: str | None = None
    file_size: int | None = None  # bytes; None when the answer gave none, or something that is not a size
    version: str | None = None    # "alpha" | "beta" | "production"
    num_tables: int | None = None
    jurisdiction: str | None = None  # "eu" | "fedramp", or None when unrestricted


@dataclass(frozen=True)
class D1Export:
    """An export downloaded to `path`: its size and sha256 were taken as it was written."""
    path: Path
    bytes: int
    sha256: str
    filename: str
    at_bookmark: str | None


@dataclass(frozen=True)
class D1Import:
    """A complete import's `result`: the bookmark right after it, the statements it ran, and its `meta`
    (the API's d1_query-meta: rows_read, rows_written, size_after, duration in ms, ...) as D1 gave it."""
    final_bookmark: str | None
    num_queries: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class D1Restore:
    bookmark: str | None
    previous_bookmark: str | None
    message: str | None


class D1Client:
    """D1 admin operations for one account."""

    def __init__(self, api: CloudflareApi, account_id: str, *, poll_interval_s: float = 1.0,
                 operation_timeout_s: float = 1_800.0, sleep: Callable[[float], None] = time.sleep,
                 transfer: httpx.Client | None = None,
                 transfer_deadline: Callable[[int], float] = transfer_deadline_s) -> None:
        self.api = api
        self.account_id = account_id
        self._account = path_segment(account_id, "account id")
        self.poll_interval_s = poll_interval_s
        self.operation_timeout_s = operation_timeout_s
        self._sleep = sleep
        # Signed URLs point at R2, not the API: a separate client without the API token.
        self._transfer = transfer or httpx.Client(timeout=300.0, verify=tls_context())
        # Seconds a download or upload of so many bytes may take (httpx bounds each read, not the whole).
        self._transfer_deadline = transfer_deadline

    def _db(self, database_id: str, suffix: str = "") -> str:
        return f"/accounts/{self._account}/d1/database/{path_segment(database_id, 'D1 database id')}{suffix}"

    # -- databases ---------------------------------------------------------------------------
    def create_database(self, name: str, location_hint: str | None = None) -> D1Database:
        body: dict[str, Any] = {"name": name}
        if location_hint:
            body["primary_location_hint"] = location_hint
        result = self.api.call("POST", f"/accounts/{self._account}/d1/database", json=body)
        return _database(result)

    def list_databases(self, name: str | None = None, *, per_page: int = LIST_PER_PAGE,
                       max_pages: int = MAX_LIST_PAGES) -> list[D1Database]:
        """Every database of the account (those whose name matches the API's `name` search, if given), in
        the order listed; each once, even if one moved between pages while they were read."""
        params = {"name": name} if name else None
        seen: dict[str, D1Database] = {}
        for page in self.api.pages(f"/accounts/{self._account}/d1/database", params=params, per_page=per_page,
                                   max_pages=max_pages):
            for item in page:
                database = _database(item)
                seen.setdefault(database.uuid, database)
        return list(seen.values())

    def get_database(self, database_id: str) -> D1Database:
        return _database(self.api.call("GET", self._db(database_id)))

    def database_size(self, database_id: str) -> int:
        """The database's size in bytes (`file_size`). An answer without one, or with anything but a
        whole number of bytes (a string, a negative, a fraction), is an error naming what came: a guess
        would misjudge the room left under D1's cap."""
        result = _object(self.api.call("GET", self._db(database_id)), f"D1 database {database_id}")
        size = _file_size(result.get("file_size"))
        if size is None:
            raw = result.get("file_size")
            said = f"file_size {str(raw)[:40]!r}" if "file_size" in result else "no file_size"
            raise CloudflareError(f"D1 described database {database_id} with {said}, not its size in "
                                  "bytes: the API changed or the base URL is wrong")
        return size

    def delete_database(self, database_id: str) -> None:
        self.api.call("DELETE", self._db(database_id))

    # -- queries ------------------------------------------------------------------------------
    def query(self, database_id: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of the last statement in `sql` (D1 runs several statements as one batch). `params` bind the
        positional placeholders (`?`, `?NNN`) as SQLite would bind them: str, int, float, bool or None."""
        sql, texts = _as_text_params(sql, params, f"D1 /query on {database_id}")
        result = self.api.call("POST", self._db(database_id, "/query"), json={"sql": sql, "params": texts})
        if not isinstance(result, list) or not result:
            raise CloudflareError(f"D1 /query on {database_id} returned no result set")
        for statement in result[:-1]:  # D1 stops a batch at its first failure; never pass one over
            if not _object(statement, f"D1 /query on {database_id}").get("success", True):
                raise CloudflareError(f"D1 /query on {database_id} failed: {statement.get('error') or statement}")
        last = _object(result[-1], f"D1 /query on {database_id}")
        if not isinstance(last.get("results") or [], list):
            raise CloudflareError(f"D1 /query on {database_id} answered rows that are not a list: "
                                  f"{str(last.get('results'))[:200]}")
        if not last.get("success", True):
            raise CloudflareError(f"D1 /query on {database_id} failed: {last.get('error') or last}")
        return list(last.get("results") or [])

    def stream(self, database_id: str, sql: str, params: Sequence[Any] = (),
               page_rows: int = PAGE_ROWS, offset: int = 0) -> Iterator[dict[str, Any]]:
        """All rows of an ORDER BY query (from the `offset`th), paged so no single response grows with the
        table. Each page re-reads every row before it, and a row added or removed meanwhile shifts the rest:
        for a table with a key, `stream_keyed`."""
        while True:
            rows = self.query(database_id, f"{sql} LIMIT ? OFFSET ?", [*params, page_rows, offset])
            last = len(rows) < page_rows
            yield from rows
            del rows  # one page in memory at a time: let this one go before the next is fetched
            if last:
                return
            offset += page_rows

    def stream_keyed(self, database_id: str, table: str, select: str, key: Sequence[str],
                     page_rows: int = PAGE_ROWS) -> Iterator[dict[str, Any]]:
        """The rows of `SELECT {select} FROM {table} ORDER BY {key}` (`table` and `key` names, the key unique:
        the primary key), a page at a time, each page starting after the last key read. A page reads its
        own rows from the key's index, where OFFSET re-read every earlier row (D1 bills rows read: a table of
        n rows cost n^2 / (2 x page_rows)), and a row written or deleted between pages neither hides nor
        repeats another. The last key travels as SQLite's own `quote()` of it, so it is compared exactly as
        stored (a 64-bit integer, a blob); a key holding NULL (which a non-INTEGER primary key allows) sorts
        first and compares as nothing, so from such a key on the rest is read by OFFSET."""
        if not key:
            raise ValueError("stream_keyed needs the table's key columns")
        names = [_ident(k) for k in key]
        marks = [_ident(f"{KEY_ALIAS}{i}") for i in range(len(key))]
        columns = f"{select}, " + ", ".join(f"quote({n}) AS {m}" for n, m in zip(names, marks, strict=True))
        order = ", ".join(names)
        base = f"SELECT {columns} FROM {_ident(table)}"
        read = 0
        after: list[str] | None = None
        while True:
            where = "" if after is None else f" WHERE ({order}) > ({', '.join(after)})"
            rows = self.query(database_id, f"{base}{where} ORDER BY {order} LIMIT ?", [page_rows])
            last = len(rows) < page_rows
            if rows:
                after = [rows[-1].get(f"{KEY_ALIAS}{i}") for i in range(len(key))]
                if not all(isinstance(literal, str) for literal in after):
                    raise CloudflareError(f"D1 /query on {database_id} answered a page of {table} without the key "
                                          f"columns asked for ({sorted(rows[-1])[:10]}): the API changed")
            for row in rows:
                for i in range(len(key)):
                    row.pop(f"{KEY_ALIAS}{i}", None)
            read += len(rows)
            yield from rows
            del rows
            if last:
                return
            if after is not None and "NULL" in after:
                yield from self.stream(database_id, f"SELECT {select} FROM {_ident(table)} ORDER BY {order}",
                                       page_rows=page_rows, offset=read)
                return

    # -- export / import ----------------------------------------------------------------------
    def export_sql(self, database_id: str, target: Path, progress: Callable[[str], None] = lambda _m: None
                   ) -> D1Export:
        """Export the whole database as SQL into the file `target`: poll until complete, then stream the
        signed URL to disk. `target` appears only once the whole dump is on disk; a failed download leaves
        whatever was there before."""
        deadline = time.monotonic() + self.operation_timeout_s
        bookmark: str | None = None
        while True:
            body: dict[str, Any] = {"output_format": "polling", "dump_options": {}}
            if bookmark:
                body["current_bookmark"] = bookmark
            # Starting or polling an export only reads: safe to repeat after a 5xx.
            response = _object(self.api.call("POST", self._db(database_id, "/export"), json=body,
                                             idempotent=True) or {}, f"D1 export of {database_id}")
            for line in response.get("messages") or []:
                progress(f"export: {line}")
            status = response.get("status")
            bookmark = response.get("at_bookmark") or bookmark
            if response.get("success") is False or status == "error":
                raise D1OperationFailed(f"D1 export of {database_id} failed: {_reason(response)}"
                                        "; retry, and check the database is not being imported into")
            if status == "complete":
                result = _object(response.get("result") or {}, f"D1 export of {database_id}")
                url = result.get("signed_url")
                if not url:
                    raise D1OperationFailed(f"D1 export of {database_id} completed without a signed_url")
                size, digest = self._download(url, Path(target))
                return D1Export(path=Path(target), bytes=size, sha256=digest,
                                filename=result.get("filename") or "export.sql", at_bookmark=bookmark)
            if time.monotonic() > deadline:
                raise D1OperationFailed(f"D1 export of {database_id} did not complete within "
                                        f"{self.operation_timeout_s:.0f} s (last bookmark {bookmark})")
            # An export that is not polled is cancelled by D1, so keep polling at a steady pace.
            self._sleep(self.poll_interval_s)

    def _download(self, url: str, target: Path) -> tuple[int, str]:
        """Stream `url` into a temporary file beside `target`, fsync it, then rename it over `target`:
        a download cut short never sits under the final name. Returns (bytes, sha256)."""
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        digest = hashlib.sha256()
        size = 0
        started = time.monotonic()
        try:
            with self._transfer.stream("GET", url) as response:
                if response.status_code != 200:
                    raise D1OperationFailed(f"downloading the D1 export answered {response.status_code}; the "
                                            "signed URL may have expired: run the export again")
                announced = response.headers.get("Content-Length")
                expected = int(announced) if announced and announced.isdigit() else MAX_DATABASE_BYTES
                deadline_s = self._transfer_deadline(expected)
                with partial.open("xb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if time.monotonic() - started > deadline_s:
                            raise D1OperationFailed(
                                f"downloading the D1 export did not finish within {format_seconds(deadline_s)} "
                                f"({size} of {announced or 'an unknown number of'} bytes had come): the link "
                                f"or R2 is too slow; nothing was written to {target}: run the export again")
                    # h11 already refuses a body shorter than its Content-Length; this says so in our words.
                    if announced and announced.isdigit() and response.num_bytes_downloaded != int(announced):
                        raise D1OperationFailed(
                            f"downloading the D1 export was cut short ({response.num_bytes_downloaded} of "
                            f"{announced} bytes); nothing was written to {target}: run the export again")
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(partial, target)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise D1OperationFailed(f"downloading the D1 export was cut short after {size} bytes "
                                    f"({type(exc).__name__}: {exc}); nothing was written to {target}. The signed "
                                    "URL is valid for one hour: run the export again") from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise D1OperationFailed(f"writing the D1 export to {partial.parent} failed ({exc.strerror or exc}); "
                                    f"nothing was written to {target}: free space or fix the directory's "
                                    "permissions and run the export again") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        _sync_directory(target.parent)
        return size, digest.hexdigest()

    def import_sql(self, database_id: str, sql: bytes | Path,
                   progress: Callable[[str], None] = lambda _m: None) -> D1Import:
        """Import SQL (the bytes, or the file at a path, streamed): init (md5 etag) -> upload -> ingest -> poll
        until complete."""
        etag = _md5(sql)
        path = self._db(database_id, "/import")
        # init names the upload by its md5, so repeating it is harmless; ingest is not repeated (it would
        # run the SQL again).
        where = f"D1 import into {database_id}"
        response = _object(self.api.call("POST", path, json={"action": "init", "etag": etag}, idempotent=True)
                           or {}, where)
        if "upload_url" in response:
            # init answers {filename, upload_url}; ingest must name that filename (a required field).
            filename = response.get("filename")
            if not isinstance(filename, str) or not filename:
                raise D1OperationFailed(f"{where}: init gave an upload_url without the filename to ingest it "
                                        f"by ({str(response)[:200]}); nothing was imported")
            self._upload(response["upload_url"], sql, etag)
            response = _object(self.api.call("POST", path, json={"action": "ingest", "etag": etag,
                                                                 "filename": filename}) or {}, where)
        else:
            # D1 already holds a file with this etag: init has started its import and answers as a poll does.
            progress("import: file already uploaded; D1 is processing it")
        deadline = time.monotonic() + self.operation_timeout_s
        while True:
            for line in response.get("messages") or []:
                progress(f"import: {line}")
            status = response.get("status")
            if response.get("success") is False or status == "error":
                raise D1OperationFailed(f"D1 import into {database_id} failed: "
                                        f"{_reason(response)}; the database was left "
                                        "as it was before the import")
            if status == "complete":
                result = _object(response.get("result") or {}, where)
                meta = result.get("meta")
                # num_queries is a JSON number (the API): 12.0 is 12 statements.
                return D1Import(final_bookmark=result.get("final_bookmark"),
                                num_queries=_file_size(result.get("num_queries")) or 0,
                                meta=dict(meta) if isinstance(meta, dict) else {})
            bookmark = response.get("at_bookmark")
            if not bookmark:
                raise D1OperationFailed(f"D1 import into {database_id} is in progress but gave no bookmark to poll")
            if time.monotonic() > deadline:
                raise D1OperationFailed(f"D1 import into {database_id} did not complete within "
                                        f"{self.operation_timeout_s:.0f} s (bookmark {bookmark})")
            self._sleep(self.poll_interval_s)
            response = _object(self.api.call("POST", path, json={"action": "poll", "current_bookmark": bookmark},
                                             idempotent=True) or {}, where)

    def _upload(self, url: str, sql: bytes | Path, etag: str) -> None:
        # The signed URL is R2's: a single PUT with its length announced (no chunked encoding), the body
        # read from the file a chunk at a time.
        size = len(sql) if isinstance(sql, bytes) else sql.stat().st_size
        deadline_s = self._transfer_deadline(size)
        chunks = _byte_chunks(sql) if isinstance(sql, bytes) else _file_chunks(sql)
        request = self._transfer.build_request("PUT", url, content=_paced(chunks, deadline_s),
                                               headers={"Content-Length": str(size)})
        try:
            response, _ = send_bounded(self._transfer, request, TRANSFER_ANSWER_BYTES, deadline_s)
        except DeadlinePassed as exc:
            raise D1OperationFailed(f"uploading the SQL file for import did not finish within "
                                    f"{format_seconds(exc.deadline_s)} (the link or R2 is too slow); nothing was "
                                    "imported: retry the import") from None
        except httpx.TransportError as exc:
            raise D1OperationFailed(f"uploading the SQL file for import failed ({type(exc).__name__}: {exc}); "
                                    "nothing was imported: retry the import") from None
        except OSError as exc:
            raise D1OperationFailed(f"reading {sql} for the import failed ({exc.strerror or exc}); nothing was "
                                    "imported") from None
        if response.status_code != 200:
            raise D1OperationFailed(f"uploading the SQL file for import answered {response.status_code}; retry")
        echoed = (response.headers.get("etag") or "").strip('"')
        if echoed != etag:
            raise D1OperationFailed("the uploaded SQL file's ETag does not match its md5: the upload was damaged; "
                                    "retry the import")

    # -- time travel --------------------------------------------------------------------------
    def bookmark(self, database_id: str, timestamp: str | None = None) -> str:
        """The current bookmark, or the nearest one at or before `timestamp` (RFC 3339)."""
        params = {"timestamp": timestamp} if timestamp else None
        result = _object(self.api.call("GET", self._db(database_id, "/time_travel/bookmark"), params=params) or {},
                         f"D1 time-travel bookmark of {database_id}")
        if not result.get("bookmark"):
            raise D1OperationFailed(f"D1 returned no time-travel bookmark for {database_id}"
                                    + (f" at {timestamp} (older than 30 days?)" if timestamp else ""))
        return str(result["bookmark"])

    def restore(self, database_id: str, *, bookmark: str | None = None, timestamp: str | None = None) -> D1Restore:
        """Restore to a bookmark or timestamp; keep `previous_bookmark` to undo."""
        if bool(bookmark) == bool(timestamp):
            raise D1OperationFailed("time-travel restore needs exactly one of a bookmark or a timestamp")
        params = {"bookmark": bookmark} if bookmark else {"timestamp": timestamp}
        result = _object(self.api.call("POST", self._db(database_id, "/time_travel/restore"), params=params) or {},
                         f"D1 time-travel restore of {database_id}")
        return D1Restore(bookmark=result.get("bookmark"), previous_bookmark=result.get("previous_bookmark"),
                         message=result.get("message"))


TRANSFER_CHUNK = 1 << 20  # bytes read at a time from a file being hashed or uploaded


def _as_text_params(sql: str, params: Sequence[Any], where: str) -> tuple[str, list[str]]:
    """`sql` and `params` as the /query API documents them: params an array of strings, bound as TEXT.
    A TEXT value compares and stores differently from a number (`length(name) > '3'` is never true; a column
    without a type keeps '10' as text, sorting before '9'), so each placeholder given a number or None is
    rewritten to turn its text back into that value: `+CAST(?N AS INTEGER)` / `+CAST(?N AS REAL)` /
    `NULLIF(?N, '')`. The unary + drops the CAST's column affinity, so the expression compares as the bound
    number would. Placeholders are numbered explicitly (?N) so the rewrite cannot shift them."""
    if all(isinstance(p, str) for p in params):
        return sql, list(params)
    texts: list[str] = []
    wrappers: list[str] = []
    for index, value in enumerate(params, start=1):
        if isinstance(value, str):
            texts.append(value)
            wrappers.append("?{}")
        elif value is None:
            texts.append("")
            wrappers.append("NULLIF(?{}, '')")
        elif isinstance(value, int):  # bool too: SQLite binds True as 1
            if not -2**63 <= value < 2**63:  # CAST would saturate it silently; sqlite3 refuses it, so does this
                raise CloudflareError(f"{where}: parameter {index} is an integer outside SQLite's 64 bits")
            texts.append(str(int(value)))
            wrappers.append("+CAST(?{} AS INTEGER)")
        elif isinstance(value, float) and math.isfinite(value):
            texts.append(repr(value))
            wrappers.append("+CAST(?{} AS REAL)")
        else:
            raise CloudflareError(f"{where}: parameter {index} is {type(value).__name__} {str(value)[:40]!r}; "
                                  "D1's /query API binds text, numbers and NULL only: convert it (bytes to hex, "
                                  "say)")
    out: list[str] = []
    last = 0
    for start, end, index in _placeholders(sql):
        out.append(sql[last:start])
        out.append(wrappers[index - 1].format(index) if index <= len(wrappers) else sql[start:end])
        last = end
    out.append(sql[last:])
    return "".join(out), texts


def _placeholders(sql: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, number) of each `?` / `?NNN` in `sql` outside string literals, quoted names and comments,
    numbered as SQLite numbers them (a bare `?` is one more than the largest number so far)."""
    largest = 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"`[":
            close = "]" if c == "[" else c
            i = sql.find(close, i + 1)
            while i != -1 and close != "]" and sql.startswith(close * 2, i):  # '' inside '...' is one quote
                i = sql.find(close, i + 2)
            i = n if i == -1 else i + 1
        elif sql.startswith("--", i):
            i = n if (i := sql.find("\n", i)) == -1 else i + 1
        elif sql.startswith("/*", i):
            i = n if (i := sql.find("*/", i + 2)) == -1 else i + 2
        elif c == "?":
            end = i + 1
            while end < n and sql[end].isdigit():
                end += 1
            number = int(sql[i + 1:end]) if end > i + 1 else largest + 1
            largest = max(largest, number)
            yield i, end, number
            i = end
        else:
            i += 1


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(TRANSFER_CHUNK):
            yield chunk


def _byte_chunks(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), TRANSFER_CHUNK):
        yield bytes(view[start:start + TRANSFER_CHUNK])


def _paced(chunks: Iterator[bytes], deadline_s: float) -> Iterator[bytes]:
    """`chunks`, until `deadline_s` has passed since the first was asked for: a peer that takes the upload a
    trickle at a time ends it instead of holding it for days."""
    started = time.monotonic()
    sent = 0
    for chunk in chunks:
        if time.monotonic() - started > deadline_s:
            raise DeadlinePassed(None, sent, deadline_s)
        yield chunk
        sent += len(chunk)


def _md5(sql: bytes | Path) -> str:
    """The import's etag: the md5 hex of the file, read a chunk at a time."""
    if isinstance(sql, bytes):
        return hashlib.md5(sql, usedforsecurity=False).hexdigest()
    digest = hashlib.md5(usedforsecurity=False)
    try:
        for chunk in _file_chunks(sql):
            digest.update(chunk)
    except OSError as exc:
        raise D1OperationFailed(f"reading {sql} for the import failed ({exc.strerror or exc}); nothing was "
                                "imported") from None
    return digest.hexdigest()


def _object(value: Any, what: str) -> dict[str, Any]:
    """A JSON object where the API documents one; anything else is a clear error, not an AttributeError."""
    if not isinstance(value, dict):
        raise CloudflareError(f"{what}: Cloudflare answered {type(value).__name__} where an object was expected "
                              f"({str(value)[:200]}): the API changed or the base URL is wrong")
    return value


def _reason(response: dict[str, Any]) -> str:
    """Why D1 says an export or import failed: `error` (a string) or, for an import, `errors` (a list)."""
    errors = response.get("errors")
    said = [str(response["error"])] if response.get("error") else []
    said += [str(e.get("message", e)) if isinstance(e, dict) else str(e)
             for e in (errors if isinstance(errors, list) else [])[:5]]
    # An import's failure may come in both (the API documents `error`, wrangler reads `errors`): said once.
    return "; ".join(dict.fromkeys(said))[:1000] or "no reason given"


def _sync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable; some platforms cannot open a directory, and lose only that."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _database(result: Any) -> D1Database:
    if not isinstance(result, dict) or not result.get("uuid"):
        raise CloudflareError(f"D1 answered without a database uuid: {str(result)[:200]}")
    version, jurisdiction = result.get("version"), result.get("jurisdiction")
    return D1Database(uuid=str(result["uuid"]), name=str(result.get("name") or ""),
                      created_at=result.get("created_at"), file_size=_file_size(result.get("file_size")),
                      version=version if isinstance(version, str) else None,
                      num_tables=_file_size(result.get("num_tables")),
                      jurisdiction=jurisdiction if isinstance(jurisdiction, str) else None)


def _file_size(value: Any) -> int | None:
    """A documented count (`file_size` in bytes, `num_tables`, `num_queries`: a JSON number) as an int; None
    for anything else. JSON has
    one number type, so 12.0 is 12 bytes; true is no size, though Python counts it an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if value >= 0 else None


# -- a D1 export run into SQLite ---------------------------------------------------------------
# A dump holds one INSERT per row, and SQLite spends most of a load preparing each of them: the drill's
# fingerprint of an export and the D1 stand-in's import run consecutive rows of a table as one multi-row
# INSERT.

DUMP_BATCH_ROWS = 500          # rows per merged INSERT: past a few hundred a larger batch saves nothing
DUMP_BATCH_CHARS = 1 << 18     # and at most about this much SQL text at a time, which SQLite parses whole
_DUMP_SAVEPOINT = "goldgate_dump_rows"
_NAME = r'(?:"[^"]*(?:""[^"]*)*"|[A-Za-z_][A-Za-z0-9_$]*)'
# `INSERT INTO <table> [(<columns>)] VALUES`, as wrangler and sqlite3's dump begin a row.
_ROW_HEAD = re.compile(rf"\s*((?i:INSERT\s+INTO\s+){_NAME}(?:\s*\(\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\))?"
                       r"\s*(?i:VALUES)\s*)\(")
# What may hide a quote that starts no string, or start a second row or statement (outside the row's strings).
_NOT_IN_A_ROW = re.compile(r'["`\[;]|--|/\*')


def _row_insert(statement: str) -> tuple[str, str] | None:
    """(head, row) of a complete statement that inserts one row whose values cannot read the database, else
    None. Such a row has no parenthesis but its own outside its strings: no subquery, no function call, so it
    inserts the same values whether run alone or with the rows next to it. Its strings are found by its
    quotes, which is cheap, once nothing that could hold a quote starting no string (a quoted name, a
    comment) is left outside them."""
    head = _ROW_HEAD.match(statement)
    if head is None:
        return None
    row = statement[head.end() - 1:].rstrip()
    if not row.endswith(";"):
        return None
    row = row[:-1].rstrip()
    if row.count("'") % 2:
        return None
    outside = "".join(row.split("'")[::2])  # the row without the text of its strings
    if (not outside.endswith(")") or outside.count("(") != 1 or outside.count(")") != 1
            or _NOT_IN_A_ROW.search(outside)):
        return None
    return head.group(1), row


@dataclass(frozen=True)
class _Rows:
    """Consecutive single-row INSERTs into one table and the same columns, each `head + row` as written."""
    head: str
    rows: tuple[str, ...]

    def merged(self) -> str:
        return self.head + ",".join(self.rows)

    def one_by_one(self) -> Iterator[str]:
        return (self.head + row for row in self.rows)


def _dump_items(lines: Iterable[str]) -> Iterator[str | _Rows]:
    """The statements of SQL text given line by line, as `service.sqltext.iter_sql` cuts them (it is handed
    the same text, so anything but a row INSERT is split exactly as before), with runs of row INSERTs into
    one table gathered. Raises ValueError, as iter_sql does, when the text ends inside a statement."""
    buf = ""
    head: str | None = None
    rows: list[str] = []
    size = 0
    for line in lines:
        buf += line
        if not sqlite3.complete_statement(buf):
            continue
        match = _row_insert(buf)
        buf = "" if match else buf
        if match and match[0] == head and len(rows) < DUMP_BATCH_ROWS and size < DUMP_BATCH_CHARS:
            rows.append(match[1])
            size += len(match[1])
            continue
        if rows:
            yield _Rows(head or "", tuple(rows))
        if match:
            head, rows, size = match[0], [match[1]], len(match[1])
            continue
        head, rows, size = None, [], 0
        yield from iter_sql([buf])
        buf = ""
    if rows:
        yield _Rows(head or "", tuple(rows))
    yield from iter_sql([buf])  # what is left: comments only, or a statement cut short (ValueError)


def run_dump(conn: sqlite3.Connection, lines: Iterable[str], check: Callable[[str], None] = lambda _s: None,
             ran: Callable[[int], None] = lambda _n: None) -> int:
    """Run a SQL dump (its text line by line) on `conn`, inside the caller's transaction; return how many
    statements it held, a row INSERT counting as one. The dump's data lands as if each statement ran on its
    own, and a statement SQLite refuses raises the error it raises alone: a run of row INSERTs that fails is
    undone and run again one row at a time. `check` sees each statement other than a row INSERT before it
    runs, and raises to refuse it; `ran` is told the running count after each step, and may raise to stop.
    Open `conn` with `cached_statements=0`: sqlite3 would keep the text of the last 128 statements, up to
    128 MB of merged rows."""
    count = 0
    for item in _dump_items(lines):
        if isinstance(item, str):
            check(item)
            conn.execute(item)
            count += 1
        else:
            _run_rows(conn, item)
            count += len(item.rows)
        ran(count)
    return count


def _run_rows(conn: sqlite3.Connection, rows: _Rows) -> None:
    if len(rows.rows) == 1 or not _merge_keeps_checks(conn):
        for statement in rows.one_by_one():
            conn.execute(statement)
        return
    conn.execute(f"SAVEPOINT {_DUMP_SAVEPOINT}")
    try:
        conn.execute(rows.merged())
    except sqlite3.Error:
        if not conn.in_transaction:  # SQLite ended the transaction itself (a full disk): nothing to undo
            raise
        conn.execute(f"ROLLBACK TO {_DUMP_SAVEPOINT}")
        conn.execute(f"RELEASE {_DUMP_SAVEPOINT}")
        for statement in rows.one_by_one():  # the row at fault raises what it raises on its own
            conn.execute(statement)
        return
    conn.execute(f"RELEASE {_DUMP_SAVEPOINT}")


def _merge_keeps_checks(conn: sqlite3.Connection) -> bool:
    """Whether rows may go in as one statement: an immediate foreign key is checked at the end of each
    statement, so a row referring to a later row of the same run would pass merged and fail alone."""
    if not conn.execute("PRAGMA foreign_keys").fetchone()[0]:
        return True
    return bool(conn.execute("PRAGMA defer_foreign_keys").fetchone()[0])
