"""`python -m service.local_server` refuses a config file that is no JSON and a migration that fails at start with
exit status 2, one schema line and a message naming what to fix, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from service_testkit import ROOT, LocalServer, check_log_lines


def _start(config_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "service.local_server", "--config", str(config_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _assert_bad_config(proc: subprocess.CompletedProcess, *says: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for text in says:
        assert text in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    check_log_lines(lines)
    assert [json.loads(line)["event"] for line in lines] == ["service.bad_config"]


def test_a_config_file_that_is_not_json_exits_2_naming_the_file(tmp_path, moto_endpoint, fake_runpod):
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base)
    server.config_path.write_text('{"stack": "test", "api_token": ')  # cut off mid-write
    _assert_bad_config(_start(server.config_path), str(server.config_path), "is not valid JSON")


def test_a_migration_that_fails_at_start_exits_2_naming_the_migration(tmp_path, moto_endpoint, fake_runpod):
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT);\nINSERT INTO missing VALUES (1);\n")
    server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, apply_migrations_from=str(migrations))
    _assert_bad_config(_start(server.config_path), "migration 0001_init.sql failed", "no such table: missing")
