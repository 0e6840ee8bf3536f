"""The D1 binding stand-in the Worker runs against in Pyodide keeps D1's per-query limits (Cloudflare's D1 "Limits"
page; the local SQLite has them set too, service/sqlite_database.py): 100 bound parameters, 100,000 bytes of SQL,
and 2,000,000 bytes a value. Past one, the call fails as D1's SQLite fails it, and a batch holding it applies
nothing. sql.js allows 32,766 parameters and values of 1 GB, so a Worker path that bound 101 values, or wrote an
outcome D1 would refuse, passed here and failed only on Cloudflare. Its `meta.last_row_id` is the inserted row's
rowid, as D1's D1Result documents it, where it was always 0."""

from __future__ import annotations

# `probes`: tests/pyodide/conftest.py, one run of run_worker.mjs --d1-probes


def test_a_statement_past_d1s_limits_fails_as_d1_fails_it(probes):
    assert probes["params_100"] == {"value": 100}  # the limit itself is allowed
    assert probes["params_101"] == {"error": "D1_ERROR: too many SQL variables: SQLITE_ERROR"}
    assert probes["sql_too_long"] == {"error": "D1_ERROR: statement too long: SQLITE_TOOBIG"}
    assert probes["value_too_big"] == {"error": "D1_ERROR: string or blob too big: SQLITE_TOOBIG"}


def test_a_batch_with_one_statement_past_a_limit_applies_nothing(probes):
    assert probes["batch_with_one_over"] == {"error": "D1_ERROR: string or blob too big: SQLITE_TOOBIG"}
    assert probes["rows_after_refusals"] == {"value": 1}  # neither the batch's first INSERT nor the big value


def test_an_inserts_meta_names_its_row_as_d1_does(probes):
    assert probes["insert_meta"] == {"value": {"changes": 1, "last_row_id": 2}}
