"""What a D1 database holds, in a form two copies can be compared by: schema, row counts, checksums.

The same SQL runs against local SQLite and against D1 over REST, so a backup taken on either
target is verified the same way. A table's checksum is the SHA-256 of its rows, each rendered by
SQLite's own `quote()` and read in primary-key order: identical content gives identical bytes,
whatever the physical layout (rowids, pages, vacuum) of the copy. (Locally a row's quote()s are joined by
one printf() rather than by `||`, and read as bytes: the same text, so the same checksum; see
`SqliteSource.row_texts`.)
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from goldgate.cloudflare.d1 import PAGE_ROWS, D1Client

# Tables D1 and SQLite keep for themselves; neither is exported nor part of the data. LIKE patterns with
# '_' escaped: a bare '_' matches any character, and would hide tables such as 'scf_settings'.
_INTERNAL = ("sqlite\\_%", "\\_cf\\_%")
_NOT_INTERNAL = " AND ".join("name NOT LIKE ? ESCAPE '\\'" for _ in _INTERNAL)
# Rows a checksum reads and hashes at once: a few hundred KB of text per page of the jobs table.
TEXT_PAGE_ROWS = 1000


class SqlSource(Protocol):
    """Somewhere SQL can be read from: `rows` for small answers, `table_rows` for whole tables."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def table_rows(self, table: str, select: str, order: Sequence[str], *, keyed: bool
                   ) -> Iterator[dict[str, Any]]:
        """`SELECT {select} FROM {table} ORDER BY {order}` (`table` and `order` names); `keyed` when `order` is
        the table's primary key, so a reader in pages may start each page after the last key read."""
        ...

    def row_texts(self, table: str, columns: Sequence[str], order: Sequence[str], *, keyed: bool
                  ) -> Iterator[list[bytes]]:
        """Each row of `table` in `order`, rendered as `_row_expr(columns)` renders it, as the bytes stored, a
        page of rows at a time (`keyed` as for `table_rows`)."""
        ...


def connect_read_only(path: Path, **kwargs: Any) -> sqlite3.Connection:
    """Open an existing SQLite file read-only, whatever its path holds.

    The path is percent-encoded into the URI: a raw `#`, `?` or `%` in a directory name would end or
    change the path SQLite reads, and it would silently open (and create) some other, empty file."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, **kwargs)


def open_stack_database(path: Path) -> sqlite3.Connection:
    """A stack's own SQLite opened read-only (the running service's writes go on), its rows `sqlite3.Row`s, or a
    one-line GoldgateError naming the state dir."""
    from goldgate.errors import GoldgateError

    try:
        conn = connect_read_only(path, timeout=10)
    except sqlite3.Error as exc:
        raise GoldgateError(f"cannot open {path} read-only ({exc}); check the state dir (--home, GOLDGATE_HOME)") \
            from None
    conn.row_factory = sqlite3.Row
    return conn


def _lenient_text(raw: bytes) -> str:
    """SQLite stores whatever bytes it is given as TEXT (a row written by hand with the sqlite3 shell, a CAST of a
    blob): a byte that is not UTF-8 made Python's default decoding fail, and with it every backup of the database.
    Kept as surrogates, each byte is hashed as it is stored (`_row_bytes`); valid UTF-8 reads as before."""
    return raw.decode("utf-8", "surrogateescape")


def _row_bytes(text: Any) -> bytes:
    return str(text).encode("utf-8", "surrogateescape")


class SqliteSource:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.text_factory = _lenient_text

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self.stream(sql, params))

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [c[0] for c in cur.description or ()]
        for row in cur:
            yield dict(zip(cols, row, strict=True))

    def table_rows(self, table: str, select: str, order: Sequence[str], *, keyed: bool
                   ) -> Iterator[dict[str, Any]]:
        # One cursor reads the file from start to end: nothing to page.
        return self.stream(f"SELECT {select} FROM {_ident(table)} ORDER BY {', '.join(map(_ident, order))}")

    def row_texts(self, table: str, columns: Sequence[str], order: Sequence[str], *, keyed: bool
                  ) -> Iterator[list[bytes]]:
        # The checksum's hot loop (a million jobs: 3 million rows each side of a drill). The text is built by
        # one printf() and read as a BLOB, its bytes as stored: no decoding to str and encoding back per row,
        # no dict per row. A BLOB holds the database's own encoding, so a UTF-16 file is read as text.
        expr = _row_printf(columns, self.conn.getlimit(sqlite3.SQLITE_LIMIT_FUNCTION_ARG) - 1)
        utf8 = str(self.rows("PRAGMA encoding")[0]["encoding"]).upper() == "UTF-8"
        cur = self.conn.execute(f"SELECT {f'CAST({expr} AS BLOB)' if utf8 else expr} FROM {_ident(table)} "
                                f"ORDER BY {', '.join(map(_ident, order))}")
        while page := cur.fetchmany(TEXT_PAGE_ROWS):
            yield [row[0] for row in page] if utf8 else [_row_bytes(row[0]) for row in page]


class D1Source:
    def __init__(self, client: D1Client, database_id: str, page_rows: int = PAGE_ROWS) -> None:
        self.client, self.database_id, self.page_rows = client, database_id, page_rows

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.client.query(self.database_id, sql, params)

    def stream(self, sql: str) -> Iterator[dict[str, Any]]:
        return self.client.stream(self.database_id, sql, page_rows=self.page_rows)

    def table_rows(self, table: str, select: str, order: Sequence[str], *, keyed: bool
                   ) -> Iterator[dict[str, Any]]:
        if keyed:
            return self.client.stream_keyed(self.database_id, table, select, order, page_rows=self.page_rows)
        # No key to start a page after: OFFSET it is (each page re-reads the rows before it).
        return self.stream(f"SELECT {select} FROM {_ident(table)} ORDER BY {', '.join(map(_ident, order))}")

    def row_texts(self, table: str, columns: Sequence[str], order: Sequence[str], *, keyed: bool
                  ) -> Iterator[list[bytes]]:
        # The SQL of the first checksums, as D1 always answered it: the network, not SQL, is the cost here.
        rows = self.table_rows(table, f"{_row_expr(columns)} AS r", order, keyed=keyed)
        while page := [_row_bytes(row["r"]) for row in itertools.islice(rows, TEXT_PAGE_ROWS)]:
            yield page


@dataclass(frozen=True)
class Fingerprint:
    schema_version: tuple[str, ...]
    schema_sha256: str
    row_counts: Mapping[str, int] = field(default_factory=dict)
    checksums: Mapping[str, str] = field(default_factory=dict)
    last_write_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": list(self.schema_version), "schema_sha256": self.schema_sha256,
                "row_counts": dict(self.row_counts), "checksums": dict(self.checksums),
                "last_write_at": self.last_write_at}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Fingerprint:
        """Raises KeyError, TypeError or ValueError when `raw` is not a fingerprint to_dict wrote."""
        version = raw["schema_version"]
        # Migration names, in order: a string would be read as its characters, a number or a list would
        # break every message that names them.
        if not isinstance(version, list) or not all(isinstance(name, str) for name in version):
            raise ValueError("fingerprint.schema_version is not a list of migration names")
        return cls(schema_version=tuple(version), schema_sha256=str(raw["schema_sha256"]),
                   row_counts={str(k): int(v) for k, v in raw["row_counts"].items()},
                   checksums={str(k): str(v) for k, v in raw["checksums"].items()},
                   last_write_at=raw.get("last_write_at"))

    def differences(self, other: Fingerprint) -> list[str]:
        """Human-readable differences from `other` (the expected one); empty when they match."""
        out = []
        if self.schema_version != other.schema_version:
            out.append(f"schema version {list(self.schema_version)} != expected {list(other.schema_version)}")
        if self.schema_sha256 != other.schema_sha256:
            out.append("table/index definitions differ from the expected schema")
        for table in sorted(set(self.row_counts) | set(other.row_counts)):
            got, want = self.row_counts.get(table), other.row_counts.get(table)
            if got != want:
                out.append(f"table {table}: {got if got is not None else 'missing'} rows, expected "
                           f"{want if want is not None else 'no such table'}")
            elif self.checksums.get(table) != other.checksums.get(table):
                out.append(f"table {table}: content checksum differs ({self.checksums.get(table, '')[:12]} != "
                           f"expected {other.checksums.get(table, '')[:12]}) with the same row count")
        return out


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _row_expr(columns: Sequence[str]) -> str:
    """A row's text, as the checksum hashes it: each column's SQLite `quote()`, joined by commas."""
    return " || ',' || ".join(f"quote({_ident(c)})" for c in columns) or "''"


def _row_printf(columns: Sequence[str], max_columns: int) -> str:
    """The text of `_row_expr`, built by one printf(): `a || ',' || b || ...` copies the row so far once per
    column, printf() writes it once (a fifth of the checksum's time on the jobs table). quote() never answers
    NULL nor text holding a NUL byte, which `%s` would render otherwise. A table wider than printf() takes
    arguments (the format and `max_columns`: 126 by default) keeps the `||` of `_row_expr`."""
    if not columns or len(columns) > max_columns:
        return _row_expr(columns)
    return (f"printf('{','.join(['%s'] * len(columns))}', "
            + ", ".join(f"quote({_ident(c)})" for c in columns) + ")")


def tables(source: SqlSource) -> list[str]:
    return [r["name"] for r in source.rows(
        f"SELECT name FROM sqlite_master WHERE type = 'table' AND {_NOT_INTERNAL} ORDER BY name", list(_INTERNAL))]


def schema_sha256(source: SqlSource) -> str:
    rows = source.rows(f"SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND {_NOT_INTERNAL} "
                       "ORDER BY type, name", list(_INTERNAL))
    text = "\n".join(f"{r['type']}|{r['name']}|{' '.join(str(r['sql']).split())}" for r in rows)
    return hashlib.sha256(_row_bytes(text)).hexdigest()


def schema_version(source: SqlSource, table_names: Sequence[str]) -> tuple[str, ...]:
    if "d1_migrations" not in table_names:
        return ()
    return tuple(r["name"] for r in source.rows("SELECT name FROM d1_migrations ORDER BY id"))


def table_checksum(source: SqlSource, table: str) -> tuple[int, str]:
    """(row count, sha256 of the rows in primary-key order), streamed: memory does not grow with the table."""
    info = source.rows(f"PRAGMA table_info({_ident(table)})")
    columns = [r["name"] for r in sorted(info, key=lambda r: r["cid"])]
    pk = [r["name"] for r in sorted((r for r in info if r["pk"]), key=lambda r: r["pk"])]
    digest = hashlib.sha256()
    count = 0
    # Without a primary key, all columns in order give a stable order for identical content. Each row's text
    # then a newline: a page hashed at once is the same bytes as its rows hashed one by one.
    for page in source.row_texts(table, columns, pk or columns, keyed=bool(pk)):
        digest.update(b"\n".join(page))
        digest.update(b"\n")
        count += len(page)
    return count, digest.hexdigest()


def last_write_at(source: SqlSource, table_names: Sequence[str]) -> str | None:
    """The newest timestamp in any `*_at` column: when the last data this copy holds was written."""
    newest: datetime | None = None
    for table in table_names:
        names = [str(c["name"]) for c in source.rows(f"PRAGMA table_info({_ident(table)})")]
        stamps = [name for name in names if name.endswith("_at")]
        if not stamps:
            continue
        # One read of the table for all its times (jobs: three), where a query each read it once per unindexed
        # column.
        maxima = ", ".join(f"max({_ident(name)}) AS v{i}" for i, name in enumerate(stamps))
        row = source.rows(f"SELECT {maxima} FROM {_ident(table)}")[0]
        for i in range(len(stamps)):
            when = parse_time(row[f"v{i}"])
            if when and (newest is None or when > newest):
                newest = when
    return newest.isoformat(timespec="milliseconds").replace("+00:00", "Z") if newest else None


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text, SQLite's CURRENT_TIMESTAMP text, or epoch seconds/milliseconds, as aware UTC."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        when = datetime.fromisoformat(str(value).strip().replace(" ", "T"))
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):  # not a time, or one no calendar of years 1..9999 holds
        return None


def fingerprint(source: SqlSource) -> Fingerprint:
    names = tables(source)
    counts, sums = {}, {}
    for table in names:
        counts[table], sums[table] = table_checksum(source, table)
    return Fingerprint(schema_version=schema_version(source, names), schema_sha256=schema_sha256(source),
                       row_counts=counts, checksums=sums, last_write_at=last_write_at(source, names))
