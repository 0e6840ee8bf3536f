"""The D1 stand-in's import, past what test_review21_drload_standin_import.py holds: an import under way blocks a
second import and an export of the same database, a file cut inside a statement fails as D1 says it, and a
database at its size cap stays at it while the import runs on its copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_review21_drload_standin_import import DUMP, Setup, setup  # noqa: F401 -- setup: a fixture

from goldgate.cloudflare.errors import CloudflareError


def test_a_second_import_into_a_database_being_imported_into_is_refused(setup: Setup) -> None:  # noqa: F811
    db = setup.d1.create_database("goldgate-two-imports").uuid
    before = setup.d1.bookmark(db)
    assert setup.post(db, setup.upload(db, DUMP)).status_code == 202
    second = setup.post(db, setup.upload(db, b"CREATE TABLE other (x TEXT);\n"))
    assert second.status_code == 400
    assert "being imported into" in second.json()["errors"][0]["message"]
    setup.standin.backend.hold_imports.set()
    assert setup.poll_until_ended(db, before).json()["result"]["status"] == "complete"
    assert setup.tables(db) == ["t"]   # the refused file never ran


def test_an_export_of_a_database_being_imported_into_is_refused(setup: Setup, tmp_path: Path) -> None:  # noqa: F811
    db = setup.d1.create_database("goldgate-export-while-import").uuid
    before = setup.d1.bookmark(db)
    setup.post(db, setup.upload(db, DUMP))
    with pytest.raises(CloudflareError, match="being imported into: imports block the D1"):
        setup.d1.export_sql(db, tmp_path / "export.sql")
    assert not (tmp_path / "export.sql").exists()
    setup.standin.backend.hold_imports.set()
    assert setup.poll_until_ended(db, before).json()["result"]["status"] == "complete"


def test_a_file_that_ends_inside_a_statement_fails_as_incomplete_input(setup: Setup) -> None:  # noqa: F811
    db = setup.d1.create_database("goldgate-cut-import").uuid
    before = setup.d1.bookmark(db)
    setup.post(db, setup.upload(db, DUMP + b"INSERT INTO t VALUES(99999,'cut"))
    setup.standin.backend.hold_imports.set()
    failed = setup.poll_until_ended(db, before).json()["result"]
    assert failed["status"] == "error" and failed["error"].startswith("incomplete input: "), failed
    assert setup.tables(db) == []


def test_a_database_at_its_size_cap_refuses_an_import_that_would_grow_it(setup: Setup) -> None:  # noqa: F811
    db = setup.d1.create_database("goldgate-full-import").uuid
    with setup.standin.backend.lock:
        conn = setup.standin.backend.databases[db].conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    before = setup.d1.bookmark(db)
    setup.post(db, setup.upload(db, DUMP))
    setup.standin.backend.hold_imports.set()
    failed = setup.poll_until_ended(db, before).json()["result"]
    assert failed["status"] == "error" and "full" in failed["error"], failed
    assert setup.tables(db) == []


def test_a_file_with_its_own_transaction_statements_is_refused_as_d1_refuses_it(setup: Setup) -> None:  # noqa: F811
    db = setup.d1.create_database("goldgate-tx-import").uuid
    before = setup.d1.bookmark(db)
    setup.post(db, setup.upload(db, b"BEGIN TRANSACTION;\n" + DUMP + b"COMMIT;\n"))
    setup.standin.backend.hold_imports.set()
    failed = setup.poll_until_ended(db, before).json()["result"]
    assert failed["status"] == "error" and "may not contain transaction statements" in failed["error"], failed
    assert setup.tables(db) == []
