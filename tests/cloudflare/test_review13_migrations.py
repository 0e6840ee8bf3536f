"""Migrations applied to D1 over the REST API (goldgate.migrations.apply_with, as the Pulumi resource applies them)
and to SQLite: the same files migrate both, a failure names the file and records nothing, a file that cannot be
read is refused by name before anything runs."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ci_policy import require

from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import MigrationError, apply_sqlite, apply_with, discover

TOKEN = "cf-review13-token-0123456789"

Execute = Callable[[str, list], list[dict]]


@pytest.fixture
def d1() -> Iterator[tuple[D1Client, str]]:
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api:
        client = D1Client(api, standin.account_id, poll_interval_s=0.0)
        yield client, client.create_database("goldgate-migrations").uuid


def _execute(d1: tuple[D1Client, str]) -> Execute:
    client, database = d1
    return lambda sql, params: client.query(database, sql, params)


def _files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def _schema(execute: Execute) -> set[tuple[str, str]]:
    return {(r["type"], r["name"]) for r in execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' "
        "AND name NOT IN ('d1_migrations', 'goldgate_migration_checksums')", [])}


def _applied(execute: Execute) -> list[str]:
    return [r["name"] for r in execute("SELECT name FROM d1_migrations ORDER BY id", [])]


def test_a_statement_that_ends_in_a_comment_migrates_d1_as_it_migrates_sqlite(d1, tmp_path: Path):
    migrations = _files(tmp_path / "migrations", {
        "0001_notes.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)\n;\n"
                          "CREATE INDEX notes_body ON notes(body) -- the search reads it\n;\n"
                          "INSERT INTO notes (body) VALUES ('first') -- a seed row\n;\n"})
    execute = _execute(d1)
    assert apply_with(execute, migrations) == ["0001_notes.sql"]
    assert _schema(execute) == {("table", "notes"), ("index", "notes_body")}
    assert execute("SELECT body FROM notes", []) == [{"body": "first"}]
    assert apply_with(execute, migrations) == []  # recorded once: a second run applies nothing

    local = sqlite3.connect(":memory:")
    local.row_factory = sqlite3.Row
    assert apply_sqlite(local, migrations) == ["0001_notes.sql"]
    assert _schema(lambda sql, params: [dict(r) for r in local.execute(sql, params)]) == _schema(execute)


def test_a_migration_d1_refuses_half_way_is_named_and_leaves_nothing_applied_or_recorded(d1, tmp_path: Path):
    migrations = _files(tmp_path / "migrations", {
        "0001_jobs.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n",
        "0002_broken.sql": "CREATE TABLE audit (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n"})
    execute = _execute(d1)
    with pytest.raises(MigrationError) as refused:
        apply_with(execute, migrations)
    assert str(refused.value).startswith("migration 0002_broken.sql failed: ")
    assert "no such table: no_such_table" in str(refused.value) and TOKEN not in str(refused.value)
    assert _applied(execute) == ["0001_jobs.sql"]
    assert _schema(execute) == {("table", "jobs")}  # the audit table of the failed batch went with it


def test_a_file_cut_off_mid_statement_is_refused_by_name_on_d1_as_on_sqlite(d1, tmp_path: Path):
    migrations = _files(tmp_path / "migrations", {
        "0001_jobs.sql": "CREATE TABLE jobs (id TEXT PRIMARY KEY);\n",
        "0002_truncated.sql": "CREATE TABLE audit (id INTEGER PRIMARY KEY,\n"})
    execute = _execute(d1)
    with pytest.raises(MigrationError) as refused:
        apply_with(execute, migrations)
    assert str(refused.value) == "0002_truncated.sql: migration ends with an incomplete SQL statement"
    assert _applied(execute) == ["0001_jobs.sql"] and _schema(execute) == {("table", "jobs")}

    local = sqlite3.connect(":memory:")
    with pytest.raises(MigrationError) as refused_locally:
        apply_sqlite(local, migrations)
    assert str(refused_locally.value) == str(refused.value)


def test_a_migration_file_that_is_not_utf8_is_refused_by_name_and_line(tmp_path: Path):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_jobs.sql").write_bytes("-- jobs\n-- caf\u00e9 au lait\nCREATE TABLE jobs (id TEXT);\n"
                                               .encode("latin-1"))
    with pytest.raises(MigrationError) as refused:
        discover(migrations)
    assert str(refused.value) == ("migration 0001_jobs.sql is not UTF-8 text (line 2, byte b'\\xe9'): save it as "
                                  "UTF-8, as wrangler reads it")


def test_a_directory_in_place_of_a_migration_file_is_refused_by_name(tmp_path: Path):
    migrations = _files(tmp_path / "migrations", {"0001_jobs.sql": "CREATE TABLE jobs (id TEXT);\n"})
    (migrations / "0002_audit.sql").mkdir()
    with pytest.raises(MigrationError, match=r"^migration 0002_audit\.sql is a directory, not a file"):
        discover(migrations)


def test_a_named_pipe_in_place_of_a_migration_file_is_refused_not_waited_on(tmp_path: Path):
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    migrations = _files(tmp_path / "migrations", {"0001_jobs.sql": "CREATE TABLE jobs (id TEXT);\n"})
    fifo = migrations / "0002_audit.sql"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            discover(migrations)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # stuck opening the pipe: let it go (a writer that closes at once), then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail(f"discover waited on the named pipe {fifo}")
    assert isinstance(outcome[0], MigrationError), outcome[0]
    assert str(outcome[0]) == ("migration 0002_audit.sql is a named pipe (FIFO), not a file: put the SQL file "
                               "there")
