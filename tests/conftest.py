"""Shared test setup. `tests/` is on sys.path (pytest's rootdir conftest), so test modules import
`ci_policy.require` for components a machine may lack."""
