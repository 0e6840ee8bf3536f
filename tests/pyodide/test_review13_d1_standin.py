"""The D1 binding stand-in the Worker runs against in Pyodide answers as workerd's binding does (its
src/cloudflare/internal/d1-api.ts): `first("col")` of a row without that column raises D1_COLUMN_NOTFOUND (no
row is still null), and a prepared text of several statements runs every one of them (the binding sends the
whole text to D1 and hands back the first statement's result), where sql.js ran the first and dropped the rest."""

from __future__ import annotations

# `probes`: tests/pyodide/conftest.py, one run of run_worker.mjs --d1-probes


def test_first_of_a_column_the_row_lacks_raises_as_d1_does(probes):
    assert probes["first_missing_column"] == {"error": "D1_COLUMN_NOTFOUND: Column not found (nope)"}
    assert probes["first_missing_column_no_row"] == {"value": None}  # no row: null, whatever the column
    assert probes["first_null_value"] == {"value": None}  # a NULL in the column is a value, not a missing one
    assert probes["first_column"] == {"value": "a"}


def test_every_statement_of_a_prepared_text_runs_and_the_first_answers(probes):
    assert probes["two_statements"] == {"value": True}
    assert probes["rows_after_two_statements"] == {"value": 1}  # the INSERT after the CREATE ran too
    assert probes["all_of_two_selects"] == {"value": [{"a": 1}]}


def test_a_failing_later_statement_fails_the_call_and_applies_nothing(probes):
    assert "UNIQUE constraint failed" in probes["second_statement_fails"]["error"]
    assert probes["rows_after_failed_pair"] == {"value": 1}  # the first INSERT was rolled back with it
    assert "single statement" in probes["params_with_two_statements"]["error"]
    assert probes["only_a_comment"]["error"].startswith("D1_ERROR")
