"""The ports the core talks through: Database (D1 semantics), ResultStore (R2: results, and input images),
RunPod, and RateLimit (the Workers Rate Limiting binding).

Adapters: service/cloudflare_entry.py (D1, R2, fetch, the rate limit bindings) and service/local_server.py (SQLite,
S3, httpx; rate limits counted in process, service/ratelimit.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class StatementResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    changes: int = 0


class Database(Protocol):
    """D1 semantics: no BEGIN/COMMIT; `batch` runs its statements as one transaction."""

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def batch(self, statements: Sequence[Statement]) -> list[StatementResult]: ...

    async def read_many(self, statements: Sequence[Statement]) -> list[list[dict[str, Any]]]:
        """Independent read-only statements (reports), each statement's rows, all from one snapshot.
        D1 runs them as one batch (one round trip, one transaction); the local adapter runs them at
        once, on up to one connection and worker thread per CPU."""
        ...


@dataclass(frozen=True)
class ObjectMeta:
    """`etag` is the store's entity tag without its quotes (R2's `etag`, S3's ETag unquoted);
    `last_modified_s` the upload time in Unix seconds. Objects are create-only: both never change."""

    key: str
    size: int
    content_type: str | None
    etag: str | None = None
    last_modified_s: int | None = None


@dataclass(frozen=True)
class StoredObject:
    """`body` is the store's own stream, which the core only hands to its runtime adapter as a Response body: an
    async iterator of bytes locally (it raises StoreUnavailable when the store breaks off mid-body), an R2Body
    in the Worker (R2's stream with its first chunk read; a break-off after that is logged and cuts the
    response). Both adapters log the cut as `result.refused`. `ResultStore.read_at_most` reads an object whole."""

    meta: ObjectMeta
    body: Any


class StorageFull(Exception):
    """The database refused a write for lack of space: the local disk under the SQLite file is full
    (SQLITE_FULL), or the D1 database has reached its size limit (10 GB on Workers Paid). Reads still work,
    and nothing of the refused write was kept (a statement or batch fails whole). The core answers 503
    `storage_full`: the client, and RunPod with its webhook, retry once the operator has made room."""


class StorageBusy(Exception):
    """The database could not take a write in time: another process held its write lock past the busy timeout
    (locally SQLITE_BUSY, e.g. a `goldgate prune` or a `sqlite3` shell left inside a transaction). Nothing of the
    write was kept. The core answers 503 `database_busy` with a short Retry-After: it passes once the lock is
    released."""


class StorageGone(Exception):
    """The local database file was deleted or replaced while the service ran. Its connection would go on writing to
    the old file, which no one opens again: every write from then on would be lost at the next start. The write
    is refused whole; the core answers 503 `database_unavailable` until the service is restarted."""


@dataclass(frozen=True)
class WriteRefusal:
    """The last write a Database adapter refused (StorageFull, StorageBusy or StorageGone), and when (Unix
    seconds), until a write succeeds again: what GET /healthz reports without a probe of its own."""

    code: str
    message: str
    at_s: float


class StoreUnavailable(Exception):
    """The result store did not answer, broke off mid-body, or refused a write; the caller should retry later
    (RunPod retries webhooks)."""


class ObjectTooLarge(Exception):
    """An object has more bytes than its reader takes; the message names the key and the limit."""


class ResultStore(Protocol):
    async def head(self, key: str) -> ObjectMeta | None: ...

    async def get(self, key: str) -> StoredObject | None: ...

    async def read_at_most(self, key: str, limit: int) -> bytes | None:
        """The object's bytes, None when there is no such object; ObjectTooLarge when it has more than `limit`
        bytes (what is over is never read). StoreUnavailable when the store does not answer or breaks off."""
        ...

    async def create(self, key: str, data: bytes, content_type: str, sha256: str) -> bool:
        """Write `data` under `key` with its Content-Type, only if no object is there (create-only; R2's binding
        checks the body it got against `sha256`, hex): True once written, False when the key was taken.
        StoreUnavailable when the store does not answer or refuses the write."""
        ...


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes


class TransportError(Exception):
    """The peer could not be reached or did not answer in time."""


class HttpTransport(Protocol):
    """The one outbound HTTP call the core needs (httpx locally, fetch in the Worker)."""

    async def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None,
                      timeout_s: float) -> HttpReply: ...


class RunPodGateway(Protocol):
    async def run(self, body: Mapping[str, Any]) -> Mapping[str, Any]: ...

    async def status(self, runpod_job_id: str) -> Mapping[str, Any]: ...

    async def cancel(self, runpod_job_id: str) -> Mapping[str, Any]: ...


class RateLimit(Protocol):
    """One route's rate limit: Cloudflare's Workers Rate Limiting binding in the Worker (`limit({key})`), a fixed
    window in process locally (service/ratelimit.py)."""

    async def limit(self, key: str) -> bool:
        """Count one request under `key`: True while the key is within its limit this period, False over it."""
        ...
