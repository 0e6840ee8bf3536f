"""A secret's rotation on the service (the webhook secret: test_review13_webhook_secret_rotation; the API token:
test_review30_tok_api_token_rotation): the local server restarted on the stack's one database with other secrets, as
a deploy does, and the checks each rotation makes of its previous secret alike."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from service_testkit import LocalServer, check_log_lines, make_config
from test_service_cloudflare_entry import make_env

from service.config import ConfigError


def start(tmp_path, moto_endpoint: str, runpod_base: str, **secrets: str) -> LocalServer:
    """The local server on the stack's one database: a restart with other secrets is a deploy."""
    server = LocalServer(tmp_path, moto_endpoint, runpod_base, **secrets)
    server.port_file.unlink(missing_ok=True)  # the last run's port: wait for this run's
    return server.start()


def lines_without(server: LocalServer, secrets: tuple[str, ...]) -> list[dict]:
    """The server's log lines, each valid and holding none of `secrets`."""
    raw = server.log_lines()
    check_log_lines(raw, extra_forbidden=secrets)
    return [json.loads(line) for line in raw]


def runpod_id(server: LocalServer, job_id: str) -> str:
    conn = sqlite3.connect(server.db_path)
    try:
        return conn.execute("SELECT runpod_job_id FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
    finally:
        conn.close()


def refused_start(tmp_path, moto_endpoint: str, runpod_base: str, secrets: tuple[str, ...],
                  **config: str) -> dict:
    """The line of a local server that exits 2 at its start on `config`: its `service.bad_config` refusal."""
    server = LocalServer(tmp_path, moto_endpoint, runpod_base, **config)
    with pytest.raises(AssertionError, match="exited 2"):
        server.start()
    server.stop()
    [refused] = [x for x in lines_without(server, secrets) if x["level"] == "error"]
    assert refused["event"] == "service.bad_config"
    return refused


def check_previous_binding(entry: Any, tmp_path, binding: str) -> None:
    """The Worker refuses a too-short previous secret's `binding` by its config name and takes an empty one for none."""
    name = binding.lower()
    with pytest.raises(ConfigError, match=f"{name} must be at least 16"):
        entry.config_from_env(make_env(tmp_path / "a", "http://127.0.0.1:9/v2/ep", **{binding: "short"}))
    config = entry.config_from_env(make_env(tmp_path / "b", "http://127.0.0.1:9/v2/ep", **{binding: ""}))
    assert getattr(config, name) is None


def leaked_line(log_lines: Any, message: str, config: dict[str, str], **fields: Any) -> str:
    """The log line a service on `config` writes for a warning whose message (and `fields`) hold a secret."""
    from service.app import create_app
    from service.workflows import Registry

    made = make_config(**config)
    app = create_app(made, None, None, None, registry=Registry.from_dir(made.workflows_dir), log_sink=log_lines.sink)
    app.log.warning("test.leak", message=message, **fields)
    return log_lines[-1]
