"""Fixtures for the service tests; the kit itself lives in service_testkit.py (a unique module
name, so test modules can import its helpers without clashing with other folders' conftest)."""

from service_testkit import (
    _migrated_template,
    _s3_session_client,
    _store_client,
    db_path,
    fake_runpod,
    local_server,
    log_lines,
    moto_endpoint,
    s3,
    shared_local_server,
    svc,
)

__all__ = ["_migrated_template", "_s3_session_client", "_store_client", "db_path", "fake_runpod",
           "local_server", "log_lines", "moto_endpoint", "s3", "shared_local_server", "svc"]
