"""A D1 database's size as the REST API documents it (`file_size` of GET .../d1/database/<id>, in bytes;
`meta.size_after` of /query), read by the D1 client from the loopback stand-in, whose size is its SQLite
image's; and every answer that is not a size in bytes refused by name, never guessed at."""

from __future__ import annotations

import json

import pytest

from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.cloudflare.errors import CloudflareError


def _sqlite_bytes(standin: D1StandIn, database_id: str) -> int:
    conn = standin.backend.databases[database_id].conn
    return conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]


def test_the_size_is_the_databases_sqlite_bytes_and_grows_with_its_rows(d1, standin):
    db = d1.create_database("goldgate-room").uuid
    empty = d1.database_size(db)
    assert empty == _sqlite_bytes(standin, db) > 0
    d1.query(db, "CREATE TABLE jobs (id INTEGER PRIMARY KEY, body TEXT)")
    d1.query(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) "
                 "INSERT INTO jobs SELECT x, printf('%.2000c', 'x') FROM c")
    grown = d1.database_size(db)
    assert grown == _sqlite_bytes(standin, db) and grown > empty + 200 * 2000
    # The list and GET describe it alike; a write's answer carries the size after it, as D1's meta does.
    assert d1.get_database(db).file_size == grown
    assert [d.file_size for d in d1.list_databases("goldgate-room")] == [grown]
    meta = d1.api.call("POST", f"/accounts/{standin.account_id}/d1/database/{db}/query",
                       json={"sql": "INSERT INTO jobs (body) VALUES ('y')"})
    assert meta[0]["meta"]["size_after"] == d1.database_size(db) > 0


def test_the_size_padding_hook_shows_a_database_near_the_cap_without_writing_it(d1, standin):
    db = d1.create_database("goldgate-big").uuid
    real = d1.database_size(db)
    standin.backend.size_padding[db] = 8_200_000_000
    assert d1.database_size(db) == real + 8_200_000_000
    assert d1.get_database(db).file_size == real + 8_200_000_000


@pytest.mark.parametrize(("described", "said"), [
    ({}, "no file_size"),
    ({"file_size": "8200000000"}, "file_size '8200000000'"),
    ({"file_size": -1}, "file_size '-1'"),
    ({"file_size": 12.5}, "file_size '12.5'"),
    ({"file_size": True}, "file_size 'True'"),
    ({"file_size": None}, "file_size 'None'"),
])
def test_an_answer_that_is_no_size_in_bytes_is_refused_naming_what_came(d1, standin, described, said):
    db = d1.create_database("goldgate-odd").uuid
    body = {"success": True, "errors": [], "messages": [],
            "result": {"uuid": db, "name": "goldgate-odd", **described}}
    standin.fail_with(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with pytest.raises(CloudflareError) as caught:
        d1.database_size(db)
    assert f"D1 described database {db} with {said}, not its size in bytes" in str(caught.value)
    standin.fail_with(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert d1.get_database(db).file_size is None  # the description itself still reads


def test_a_whole_number_written_as_a_json_fraction_is_that_many_bytes(d1, standin):
    db = d1.create_database("goldgate-float").uuid
    body = {"success": True, "errors": [], "messages": [], "result": {"uuid": db, "file_size": 4096.0}}
    standin.fail_with(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert d1.database_size(db) == 4096
