"""GET /api/jobs: the caller's jobs, newest first, a page at a time: a named client's own jobs, the API token's every
job (or one client's). A page is a keyset read of migration 0012's indexes on (created_at, id), so it reads at most
`limit` + 1 index entries and their rows whatever the filters, and a job created meanwhile never shifts a later page.

A `status` filter is applied to the jobs a page read, not by an index: an index on status would be rewritten by every
webhook's transition. So a filtered page may hold fewer than `limit` jobs, or none, while `next_cursor` still leads on;
`created_after` bounds the walk itself (a job in flight was created within its lifetime, jobs.MAX_LIFETIME_MS: 7 days
and 70 minutes at most)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from service import jobs
from service.clients import NAME, NAME_RULE
from service.http import ApiError, Request, Response, json_response
from service.routes import client_of, require_bearer

if TYPE_CHECKING:
    from service.app import App

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
PARAMETERS = ("status", "limit", "cursor", "created_after", "client")
# What a summary shows: enough to find a job again (its id, trace, RunPod's id), see where it is (status, times) and
# what it ran; never its inputs (up to a megabyte each) nor its results and error (GET /api/status/<job_id> has them).
SUMMARY_COLUMNS = ("id", "status", "workflow_id", "workflow_version", "client", "created_at", "updated_at",
                   "finished_at", "trace_id", "runpod_job_id")
_SELECT = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM jobs"
_ORDER = "ORDER BY created_at DESC, id DESC LIMIT ?"
# Each filter the route allows reads one of migration 0012's indexes, in its order: no scan of jobs, no sort.
INDEXES = {False: "jobs_created_id", True: "jobs_client_created"}

_CURSOR_LABEL = b"goldgate.job-list-cursor.v1"  # domain separation: no other signature of the secret's is a cursor
_MAX_CURSOR = 256  # a cursor this service hands out is about 110 characters
_MAX_TIME = 64
_ABOVE_EVERY_TIME = "~"  # sorts after every stored created_at (they start with a digit)
_BELOW_EVERY_TIME = ""  # sorts before every one


@dataclass(frozen=True)
class Listing:
    """One page's request. `client`: whose jobs (a client's name), or None for every job (the API token's listing);
    `from_time`: only jobs created at or after it (stored form); `before`: the (created_at, id) the page starts
    below (the previous page's last job)."""

    client: str | None
    statuses: frozenset[str] | None
    from_time: str | None
    limit: int
    before: tuple[str, str] | None = None

    def scope(self) -> bytes:
        """What a cursor is bound to: the listing it came from (whose jobs and which filters), never the limit."""
        statuses = ",".join(sorted(self.statuses)) if self.statuses is not None else "*"
        return json.dumps([self.client, statuses, self.from_time]).encode()


def page_statement(listing: Listing) -> tuple[str, tuple[Any, ...]]:
    """The page's one read: at most `limit` + 1 jobs (the one past the page says whether another follows), newest
    first, from the listing's index."""
    conditions: list[str] = []
    params: list[Any] = []
    if listing.client is not None:
        conditions.append("client = ?")
        params.append(listing.client)
    if listing.from_time is not None:
        conditions.append("created_at >= ?")
        params.append(listing.from_time)
    if listing.before is not None:
        conditions.append("(created_at, id) < (?, ?)")
        params.extend(listing.before)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"{_SELECT}{where} {_ORDER}", (*params, listing.limit + 1)


async def list_jobs(app: App, request: Request, **_: str) -> Response:
    """GET /api/jobs (and HEAD): a page of job summaries and the cursor of the next page (null after the last)."""
    caller = require_bearer(app, request)
    secrets = (app.config.webhook_secret, app.config.webhook_secret_previous)
    listing = parse_listing(request.query_string, client_of(caller), secrets)
    sql, params = page_statement(listing)
    rows = await app.db.query(sql, params)
    read = rows[:listing.limit]
    shown = [summary(row) for row in read if listing.statuses is None or row["status"] in listing.statuses]
    after = (read[-1]["created_at"], read[-1]["id"]) if len(rows) > listing.limit else None
    return json_response(200, {"jobs": shown,
                               "next_cursor": None if after is None else make_cursor(secrets[0], listing, after)})


def summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": row["id"], **{column: row[column] for column in SUMMARY_COLUMNS[1:]}}


def parse_listing(query_string: str, own_client: str | None, secrets: tuple[str, str | None]) -> Listing:
    """The query's listing for a caller (`own_client`: a named client's name, None for the API token), or the 400
    (403 for `client` from a client) that names the field. Nothing is read before it."""
    query = parse_qs(query_string, keep_blank_values=True)
    for name in sorted(query):
        if name not in PARAMETERS:
            raise _invalid(name[:64], f"GET /api/jobs takes no {name[:64]!r} parameter; it takes "
                                      f"{', '.join(PARAMETERS)}")
    for name, values in query.items():
        if len(values) > 1:  # answering for the first would hide that the others were ignored
            raise _invalid(name, f"{name} must be given once (got {_shown(values)})"
                           + ("; name several statuses in one, comma-separated" if name == "status" else ""))
    given = {name: values[0] for name, values in query.items()}
    if "client" in given and own_client is not None:
        raise ApiError(403, "operator_only", "client (another client's jobs) is an operator's filter, served on the "
                                             "API token only; a client's token lists that client's own jobs: drop "
                                             "client", field="client")
    client = own_client if own_client is not None else _client(given.get("client"))
    listing = Listing(client, _statuses(given.get("status")), _from_time(given.get("created_after")),
                      _limit(given.get("limit")))
    cursor = given.get("cursor")
    return listing if cursor is None else dataclasses.replace(listing, before=read_cursor(cursor, listing, secrets))


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_query", message, field=field)


def _shown(values: list[str]) -> str:
    """A parameter's values as a refusal names them: the first three, each cut to 64 characters."""
    return ", ".join(repr(value[:64]) for value in values[:3]) + (", ..." if len(values) > 3 else "")


def _client(raw: str | None) -> str | None:
    if raw is not None and not NAME.match(raw):
        raise _invalid("client", f"client must be a client's name ({NAME_RULE}), got {_shown([raw])}")
    return raw


def _statuses(raw: str | None) -> frozenset[str] | None:
    if raw is None:
        return None
    named = raw.split(",")
    if not raw or any(status not in jobs.STATUSES for status in named):
        raise _invalid("status", f"status must be one or more of {', '.join(jobs.STATUSES)}, comma-separated "
                                 f"(got {_shown([raw])})")
    return frozenset(named)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise _invalid("limit", f"limit must be a whole number from 1 to {MAX_LIMIT} (got {_shown([raw])}); "
                                f"without it a page holds up to {DEFAULT_LIMIT} jobs")
    return int(raw)


def _from_time(raw: str | None) -> str | None:
    """The first stored created_at after `raw` (created_after: strictly after it), as the rows store it (UTC,
    milliseconds, Z), so the index compares text in time order."""
    if raw is None:
        return None
    text = raw.strip()
    head, _, tail = text.rpartition(" ")
    if any(sep in head for sep in "Tt "):  # a space before the offset is a '+' the client left unencoded in its URL
        text = f"{head}+{tail}"
    try:
        # fromisoformat takes a trailing NUL (`...:00%00`), strip() tabs and Unicode spaces: printable ASCII only
        if len(raw) > _MAX_TIME or not (raw.isascii() and raw.isprintable()):
            raise ValueError(raw)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid("created_after", f"created_after must be an ISO 8601 time such as 2026-01-31T00:00:00Z "
                                        f"(UTC when it names no offset), got {_shown([raw])}") from None
    # Rows are stored to the millisecond: the first one after the time is at its next whole millisecond.
    try:
        in_utc = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        first = in_utc + timedelta(microseconds=1000 - in_utc.microsecond % 1000)
    except OverflowError:  # a time in UTC before year 1 (0001-01-01T00:00:00+14:00): every job is after it; past 9999
        return _BELOW_EVERY_TIME if (parsed.utcoffset() or timedelta(0)) > timedelta(0) else _ABOVE_EVERY_TIME
    return first.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=8)
def _cursor_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CURSOR_LABEL, hashlib.sha256).digest()


def _cursor_mac(secret: str, scope: bytes, position: bytes) -> bytes:
    return hmac.new(_cursor_key(secret), scope + b"\n" + position, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_cursor(secret: str, listing: Listing, after: tuple[str, str]) -> str:
    """The next page's cursor: the position (the page's last job's created_at and id) and a MAC over it and the
    listing, with a key derived from the webhook secret. Opaque to clients; a changed one is refused."""
    position = json.dumps(list(after), separators=(",", ":")).encode()
    return f"{_b64(position)}.{_b64(_cursor_mac(secret, listing.scope(), position))}"


def read_cursor(cursor: str, listing: Listing, secrets: tuple[str, str | None]) -> tuple[str, str]:
    """The (created_at, id) a cursor this service made for `listing` names (a cursor made with the previous webhook
    secret too, while it is rotated); else the 400 naming `cursor`."""
    refused = _invalid("cursor", "cursor is not a next_cursor this service gave for this listing (it was changed, "
                                 "or came with other status, created_after or client): pass next_cursor as it came, "
                                 "with the same filters, or start again without cursor")
    encoded, dot, sig = cursor.partition(".")
    if len(cursor) > _MAX_CURSOR or not dot or not encoded.isascii() or not sig.isascii():
        raise refused
    try:
        position = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        given = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    except (binascii.Error, ValueError):
        raise refused from None
    if _b64(position) != encoded or _b64(given) != sig:  # decoding forgives junk, '=' and unused bits: one spelling
        raise refused
    current, previous = secrets
    by_current = hmac.compare_digest(_cursor_mac(current, listing.scope(), position), given)
    by_previous = previous is not None and hmac.compare_digest(_cursor_mac(previous, listing.scope(), position), given)
    if not (by_current or by_previous):
        raise refused
    created_at, job_id = json.loads(position)  # ours: the MAC holds
    return created_at, job_id
