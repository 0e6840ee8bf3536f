"""The table checksum a backup's manifest records keeps its value: a backup taken by an earlier goldgate
still verifies, and a local checksum still equals the one D1 answers over REST for the same rows. The values
below were taken by the row-by-row checksum of review 16 (`quote(a) || ',' || quote(b) ...`, read as str, one
row at a time)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.ops.fingerprint import D1Source, SqliteSource, fingerprint, table_checksum

TOKEN = "cf-test-token-0123456789"

# Rows a production database gathers, and some it should not: every storage class, quotes, a newline, a comma,
# text that is not UTF-8, text holding a NUL byte, reals printed as 15 digits and reals that need 20,
# infinities, -0.0.
_ODD = [
    (1, "plain", 1.0, b"\x00\xff", 10, None),
    (2, "it's ''quoted''\nnew line, comma", 0.1, b"", 1e300, 3.14159265358979),
    (3, "üñï©ødé ☃ 𝄞", -0.0, None, "12abc", 9223372036854775807),
    (4, None, 1e-300, b"\xde\xad\xbe\xef", 2.5, -9223372036854775808),
    (5, "", 1 / 3, b"x" * 70, None, float("inf")),
    (6, "%s %d %%", float("-inf"), b"'", 0, "2026-11-30T00:00:00.000Z"),
]


def _odd_database(path: Path, encoding: str = "UTF-8") -> Path:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA encoding = '{encoding}'")
    with conn:
        conn.execute("CREATE TABLE odd (k INTEGER PRIMARY KEY, t TEXT, r REAL, b BLOB, n NUMERIC, v)")
        conn.executemany("INSERT INTO odd VALUES (?, ?, ?, ?, ?, ?)", _ODD)
        # written by hand with the sqlite3 shell: a byte that is not UTF-8, and a NUL inside text
        conn.execute("INSERT INTO odd (k, t, v) "
                     "VALUES (7, CAST(X'66FF6F' AS TEXT), CAST(X'6100620a' AS TEXT))")
        conn.execute('CREATE TABLE "no key, ""quoted""" (a, b)')
        conn.executemany('INSERT INTO "no key, ""quoted""" VALUES (?, ?)',
                         [(2, "b"), (1, None), (1, "a"), (1, "a")])
        conn.execute("CREATE TABLE pair (scope TEXT, n INTEGER, body TEXT, PRIMARY KEY (scope, n)) "
                     "WITHOUT ROWID")
        conn.executemany("INSERT INTO pair VALUES (?, ?, ?)", [("b", 1, "x"), ("a", 2, "y"), ("a", -1, "z")])
        # wider than SQLite's printf() takes arguments (127)
        wide = ", ".join(f"c{i} TEXT" for i in range(140))
        conn.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {wide})")
        conn.executemany("INSERT INTO wide (id, c0, c77, c139) VALUES (?, ?, ?, ?)",
                         [(i, f"r{i}", i * 1.5, None if i % 2 else "'") for i in range(1, 2_501)])
    conn.close()
    return path


# (row count, sha256) of each table, by the checksum of review 16
PINNED = {
    "odd": (7, "ed0c2731e16eb4b23c12848cd6ed541b2c175c77adef37bacf799c23f87e0c33"),
    'no key, "quoted"': (4, "9908e6775fc66600c49297d66128e96dc7f9a47e3fd9139712211b23d3290075"),
    "pair": (3, "21aba6b471aa1320cff8f2e16a25983de6c3ba3db95dc764c704aa4fc3b5fe9d"),
    "wide": (2_500, "62c87d2f87d10bd5c6ac31f34c07d14a8d2bf68f1173ba31461c1bd25bdd7ff6"),
}
PINNED_UTF16 = {"odd": (7, "14efa310b171dc52fc67ebe29f594e2a90beee3d0d9b0759d4231256dcd0c190")}


def _row_by_row(conn: sqlite3.Connection, table: str) -> tuple[int, str]:
    """The checksum as the docs describe it, spelled out the slow way: each row's quote()s joined by commas,
    in primary-key order (all columns without one), its UTF-8 bytes as stored then a newline."""
    conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    name = '"' + table.replace('"', '""') + '"'
    info = conn.execute(f"PRAGMA table_info({name})").fetchall()
    cols = ['"' + r[1] + '"' for r in info]
    key = ['"' + r[1] + '"' for r in sorted((r for r in info if r[5]), key=lambda r: r[5])] or cols
    row = " || ',' || ".join(f"quote({c})" for c in cols)
    digest, count = hashlib.sha256(), 0
    for (text,) in conn.execute(f"SELECT {row} FROM {name} ORDER BY {', '.join(key)}"):
        digest.update(str(text).encode("utf-8", "surrogateescape") + b"\n")
        count += 1
    return count, digest.hexdigest()


@pytest.mark.parametrize("table", sorted(PINNED))
def test_each_table_checksum_keeps_the_value_earlier_backups_recorded(tmp_path, table):
    conn = sqlite3.connect(_odd_database(tmp_path / "odd.sqlite"))
    assert table_checksum(SqliteSource(conn), table) == PINNED[table]
    assert _row_by_row(conn, table) == PINNED[table]


def test_a_utf16_database_is_checksummed_as_its_text_not_its_bytes(tmp_path):
    conn = sqlite3.connect(_odd_database(tmp_path / "odd16.sqlite", encoding="UTF-16le"))
    assert conn.execute("PRAGMA encoding").fetchone()[0] == "UTF-16le"
    assert table_checksum(SqliteSource(conn), "odd") == PINNED_UTF16["odd"]


def test_the_whole_fingerprint_counts_every_table_and_sees_a_changed_byte(tmp_path):
    db = _odd_database(tmp_path / "odd.sqlite")
    conn = sqlite3.connect(db)
    before = fingerprint(SqliteSource(conn))
    assert {t: (before.row_counts[t], before.checksums[t]) for t in PINNED} == PINNED
    with conn:  # one byte of the text that is not UTF-8
        conn.execute("UPDATE odd SET t = CAST(X'66FE6F' AS TEXT) WHERE k = 7")
    after = fingerprint(SqliteSource(conn))
    assert after.differences(before) == [(
        f"table odd: content checksum differs ({after.checksums['odd'][:12]} != expected "
        f"{before.checksums['odd'][:12]}) with the same row count")]


def test_d1_over_rest_gives_the_local_checksum_of_the_same_rows(tmp_path):
    conn = sqlite3.connect(_odd_database(tmp_path / "odd.sqlite"))
    # what JSON and SQL literals carry: UTF-8 text (no NUL), finite reals; no table wider than 100 columns
    with conn:
        conn.execute("DELETE FROM odd WHERE k = 7")
        conn.execute("UPDATE odd SET r = -1.5e308, v = 1.5e308 WHERE k IN (5, 6)")
        conn.execute("DROP TABLE wide")
    names = [t for t in PINNED if t != "wide"]
    with D1StandIn(TOKEN) as standin:
        api = CloudflareApi(TOKEN, standin.api_base)
        try:
            d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
            db = d1.create_database("goldgate-odd-rows").uuid
            for table in names:
                name = '"' + table.replace('"', '""') + '"'
                create = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
                d1.query(db, create)
                columns = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")]
                literals = " || ', ' || ".join(f'quote("{c}")' for c in columns)
                for (values,) in conn.execute(f"SELECT {literals} FROM {name}"):
                    d1.query(db, f"INSERT INTO {name} VALUES ({values})")
            for table in names:
                local = table_checksum(SqliteSource(conn), table)
                assert local[0] == PINNED[table][0] - (table == "odd")
                assert table_checksum(D1Source(d1, db, page_rows=2), table) == local, table
        finally:
            api.close()
