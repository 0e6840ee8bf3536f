"""The D1 stand-in's `bind` and `run` answer as workerd's binding (src/cloudflare/internal/d1-api.ts): bind takes
numbers, strings, booleans (as 1/0), null and bytes, and refuses anything else with `typeof` in its message, a
BigInt (what Pyodide makes of a Python int past 2**53) included; `run()` asks D1 for no rows (resultsFormat NONE)
and answers only `success` and `meta`. The stand-in bound BigInts and handed `run()` the rows."""

from __future__ import annotations

# `probes`: tests/pyodide/conftest.py, one run of run_worker.mjs --d1-probes


def test_bind_refuses_a_bigint_and_names_types_as_d1_does(probes):
    assert probes["bind_bigint"] == {
        "error": "D1_TYPE_ERROR: Type 'bigint' not supported for value '1152921504606846976'"}
    assert probes["bind_undefined"] == {"error": "D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'"}
    assert probes["bind_object"] == {"error": "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'"}
    assert probes["bind_boolean"] == {"value": 1}


def test_run_answers_success_and_meta_without_rows(probes):
    assert probes["run_keys"] == {"value": ["meta", "success"]}
