"""The local database file deleted while the stack runs: the service's connection is the last handle on it (reads
go on), and `goldgate down` closes it. At the first refused write (`database.gone`) the service saves a copy of
the database it still has open, once, beside the path, and names it in the line's data: every job written before
the deletion is in it. Driven on the real `python -m service.local_server`."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import httpx
import jsonschema
from service_testkit import API_TOKEN, LocalServer

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "logging-schema-v1.json").read_text())


def test_a_deleted_database_is_saved_once_from_the_open_connection_and_named(local_server: LocalServer, fake_runpod):
    db = local_server.db_path
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        made = [client.post("/api/queue/create", json=CREATE, headers=AUTH) for _ in range(3)]
        assert all(r.status_code == 202 for r in made), [r.text for r in made]
        jobs = sorted(r.json()["job_id"] for r in made)
        before = {path.name for path in db.parent.iterdir()}
        os.unlink(db)
        seen = len(local_server.log_lines())
        for _ in range(2):
            refused = client.post("/api/queue/create", json=CREATE, headers=AUTH)
            assert refused.status_code == 503, refused.text

    lines = [json.loads(line) for line in local_server.log_lines()[seen:]]
    gone = [line for line in lines if line["event"] == "database.gone"]
    assert len(gone) == 2, lines
    for line in gone:
        jsonschema.validate(line, SCHEMA)
    rescued = Path(gone[0]["data"]["rescued"])
    assert gone[1]["data"]["rescued"] == str(rescued)  # once: the second refusal names the same copy
    assert rescued.parent == db.parent and rescued.name.startswith(f"{db.name}.rescued-")
    assert str(rescued) in gone[0]["message"]
    made_now = {path.name for path in db.parent.iterdir()} - before
    assert sorted(name for name in made_now if ".rescued-" in name) == [rescued.name]
    conn = sqlite3.connect(rescued)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert sorted(row[0] for row in conn.execute("SELECT id FROM jobs")) == jobs
    finally:
        conn.close()


def test_the_rescue_never_writes_over_an_existing_file(tmp_path, monkeypatch):
    from service_testkit import migrate

    from service import sqlite_database

    db_path = tmp_path / "service.sqlite"
    migrate(db_path)
    monkeypatch.setattr(sqlite_database.time, "strftime", lambda *_: "20261201T000000Z")
    taken = tmp_path / "service.sqlite.rescued-20261201T000000Z"
    taken.write_bytes(b"an earlier rescue")
    db = sqlite_database.SqliteDatabase(db_path)
    try:
        assert db.rescue_copy() == (None, f"{taken}: File exists")
        assert taken.read_bytes() == b"an earlier rescue"
    finally:
        db.close()
