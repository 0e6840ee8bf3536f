"""The local service's own migration runner (apply_migrations_from) reads a migration file as goldgate's does:
a file not saved as UTF-8, a named pipe or a directory in a migration's place is refused by its name before
anything runs, in the same words whichever runner met it. Before, a Latin-1 file failed with a bare
UnicodeDecodeError naming no file, and a named pipe held the service's start for ever."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from ci_policy import require

from goldgate import migrations as goldgate_migrations
from service import migrate

JOBS = "CREATE TABLE jobs (id TEXT);\n"


def _directory(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "0001_jobs.sql").write_text(JOBS, encoding="utf-8")
    return directory


def _refusals(directory: Path, tmp_path: Path) -> tuple[str, str, list[str]]:
    """What each runner says of `directory`, and the tables the service's runner left in its database."""
    conn = sqlite3.connect(tmp_path / "service.sqlite", isolation_level=None)
    try:
        with pytest.raises(migrate.MigrationError) as ours:
            migrate.apply_sqlite(conn, directory)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                                             "('d1_migrations', 'goldgate_migration_checksums', 'sqlite_sequence')")]
    finally:
        conn.close()
    with pytest.raises(goldgate_migrations.MigrationError) as theirs:
        goldgate_migrations.discover(directory)
    return str(ours.value), str(theirs.value), tables


def test_a_migration_not_saved_as_utf8_is_refused_by_name_and_line(tmp_path: Path) -> None:
    directory = _directory(tmp_path)
    (directory / "0002_notes.sql").write_bytes("-- notes\n-- caf\u00e9 au lait\nCREATE TABLE notes (id TEXT);\n"
                                               .encode("latin-1"))
    ours, theirs, tables = _refusals(directory, tmp_path)
    assert ours == ("migration 0002_notes.sql is not UTF-8 text (line 2, byte b'\\xe9'): save it as UTF-8, as "
                    "wrangler reads it")
    assert theirs == ours
    assert tables == []  # refused before the first migration ran


def test_a_directory_in_place_of_a_migration_is_refused_by_name(tmp_path: Path) -> None:
    directory = _directory(tmp_path)
    (directory / "0002_notes.sql").mkdir()
    ours, theirs, tables = _refusals(directory, tmp_path)
    assert ours == "migration 0002_notes.sql is a directory, not a file: put the SQL file there"
    assert theirs == ours and tables == []


def _within_bound(run: Callable[[], object], fifo: Path) -> BaseException | None:
    """What `run` raised (None if nothing); a run still stuck on the pipe after 10 s fails the test."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            run()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test's thread
            outcome.append(exc)

    reader = threading.Thread(target=target, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # stuck opening the pipe: let it go (a writer that closes at once), then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail(f"the service's migration runner waited on the named pipe {fifo}")
    return outcome[0]


def test_a_named_pipe_in_place_of_a_migration_is_refused_not_waited_on(tmp_path: Path) -> None:
    require(hasattr(os, "mkfifo"), "named pipes (os.mkfifo)")
    directory = _directory(tmp_path)
    fifo = directory / "0002_notes.sql"
    os.mkfifo(fifo)
    conn = sqlite3.connect(tmp_path / "service.sqlite", isolation_level=None, check_same_thread=False)
    try:
        refused = _within_bound(lambda: migrate.apply_sqlite(conn, directory), fifo)
    finally:
        conn.close()
    assert isinstance(refused, migrate.MigrationError), refused
    assert str(refused) == "migration 0002_notes.sql is a named pipe (FIFO), not a file: put the SQL file there"
