"""Fixtures for the service tests; the kit itself lives in service_testkit.py (a unique module
name, so test modules can import its helpers without clashing with other folders' conftest)."""

from service_testkit import db_path, fake_runpod, local_server, log_lines, moto_endpoint, s3, svc

__all__ = ["db_path", "fake_runpod", "local_server", "log_lines", "moto_endpoint", "s3", "svc"]
