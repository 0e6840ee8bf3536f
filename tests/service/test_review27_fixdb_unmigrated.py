"""The service serves only a migrated database (the host migrates it before starting the service): a missing file
(deleted under the stack) or one without goldgate's tables is refused, and no empty file is left in its place.
Before, a redeploy's new service made a new empty file and answered every create 500 `no such table`."""

from __future__ import annotations

import sqlite3

import pytest
from service_testkit import make_config

from service.config import ConfigError
from service.local_server import build_local


def test_a_missing_database_is_refused_and_not_made(tmp_path):
    db = tmp_path / "db.sqlite"
    config = make_config(db_path=str(db), runpod_endpoint_base="http://127.0.0.1:1", s3_endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="there is no database file"):
        build_local(config)
    assert not db.exists()


def test_a_database_without_tables_is_refused(tmp_path):
    db = tmp_path / "db.sqlite"
    sqlite3.connect(db).execute("PRAGMA user_version = 1")  # a SQLite file, as a new service made one
    config = make_config(db_path=str(db), runpod_endpoint_base="http://127.0.0.1:1", s3_endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="no migrations applied"):
        build_local(config)
