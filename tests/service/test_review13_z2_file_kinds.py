"""A migration and a goldgate file (a stack file, the release lock, ...) with something else in their place are
refused in the same words for what is there, a socket or a device included: the words are service.files' alone."""

from __future__ import annotations

import os
import socket
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from goldgate.files import NotARegularFile, open_regular
from service import migrate


def _socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the socket file stays


def _device(path: Path) -> None:
    path.symlink_to(os.devnull)


@pytest.mark.parametrize(("make", "kind"), [(Path.mkdir, "a directory"), (os.mkfifo, "a named pipe (FIFO)"),
                                            (_socket, "a socket"), (_device, "a device")],
                         ids=["directory", "fifo", "socket", "device"])
def test_a_non_file_is_named_alike_by_the_migration_runner_and_goldgate(make: Callable[[Path], object],
                                                                        kind: str) -> None:
    # a short directory: a socket's path must fit AF_UNIX's 108 bytes
    with tempfile.TemporaryDirectory(prefix="z2-") as tmp:
        directory = Path(tmp) / "migrations"
        directory.mkdir()
        (directory / "0001_jobs.sql").write_text("CREATE TABLE jobs (id TEXT);\n", encoding="utf-8")
        make(directory / "0002_notes.sql")
        conn = sqlite3.connect(Path(tmp) / "service.sqlite", isolation_level=None)
        try:
            with pytest.raises(migrate.MigrationError) as refused:
                migrate.apply_sqlite(conn, directory)
        finally:
            conn.close()
        with pytest.raises(NotARegularFile) as not_a_file:
            open_regular(directory / "0002_notes.sql", os.O_RDONLY)
    assert str(refused.value) == f"migration 0002_notes.sql is {kind}, not a file: put the SQL file there"
    assert not_a_file.value.kind == kind
