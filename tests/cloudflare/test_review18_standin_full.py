"""The D1 stand-in at a full database (SQLITE_FULL, made with `max_page_count` on its SQLite): a /query write
answers D1's error naming the cause, as D1 does, and the database stays usable once there is room. SQLite ends
the transaction itself on SQLITE_FULL, and the stand-in's own `ROLLBACK TO` then raised "no such savepoint", a
500 in place of the error a client of D1 (the prune, the migrations, the service's adapter) must see."""

from __future__ import annotations

import pytest

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError

TOKEN = "cf-full-token-0123456789abcdef"
ROW = "x" * 6000  # more than one 4 KiB page: an insert needs a new page


def test_a_write_on_a_full_d1_stand_in_is_d1s_error_and_the_database_goes_on(tmp_path) -> None:
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api:
        d1 = D1Client(api, standin.account_id, poll_interval_s=0.0)
        db = d1.create_database("goldgate-full").uuid
        d1.query(db, "CREATE TABLE t (v TEXT)")
        d1.query(db, "INSERT INTO t VALUES (?)", [ROW])
        conn = standin.backend.databases[db].conn
        conn.execute("VACUUM")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(CloudflareError, match="database or disk is full") as raised:
            d1.query(db, "INSERT INTO t VALUES (?)", [ROW])
        assert "savepoint" not in str(raised.value)
        assert d1.query(db, "SELECT count(*) AS n FROM t")[0]["n"] == 1  # reads go on; nothing half-written
        conn.execute("PRAGMA max_page_count = 1073741823")  # room again
        d1.query(db, "INSERT INTO t VALUES (?)", [ROW])
        assert d1.query(db, "SELECT count(*) AS n FROM t")[0]["n"] == 2
