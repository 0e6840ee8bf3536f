"""A service that died is restarted on the config it ran with when the new config, which goldgate's own checks
passed, is one the service still refuses (a rule of the service's that goldgate does not know yet): the host logs
service.config_refused naming the service's log, and serves on. Before, the refusal escaped the host's loop and the
whole stack failed. A real host object, object store and service processes (no RunPod is called at a start)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import types
from pathlib import Path

import httpx
from ci_policy import needs
from stackfiles import stacks_file

from goldgate.local.stackhost import StackHost
from goldgate.migrations import MIGRATIONS_DIR, apply_sqlite
from service.config import MAX_SIGNED_URL_TTL_S

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")


def test_a_new_config_the_service_refuses_restarts_it_on_the_one_it_ran_with(home: Path) -> None:
    host = StackHost("staging", home, stacks_file(home))
    host.runpod = types.SimpleNamespace(endpoint_base="http://127.0.0.1:9/v2", stop=lambda: None)
    host.endpoint_id = "ep-local"
    try:
        apply_sqlite(host.dir.db_path, MIGRATIONS_DIR)
        host.start_object_store()
        host.start_service(None)
        ran_with = host.serving_config
        # What the next config holds that the service refuses and goldgate let through.
        host.spec = dataclasses.replace(host.spec, api=dataclasses.replace(
            host.spec.api, signed_url_ttl_s=MAX_SIGNED_URL_TTL_S + 1))
        dead = host.service
        os.kill(dead.pid, signal.SIGKILL)
        dead.wait()

        host.restart_service()

        assert host.service is not dead and host.service.poll() is None
        assert host.serving_config == ran_with
        assert (host.dir.root / "service.json").read_text() == ran_with
        health = httpx.get(f"http://127.0.0.1:{host.service_port}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["stack"] == "staging"
        lines = [json.loads(line) for line in (host.dir.logs_dir / "stackhost.jsonl").read_text().splitlines()]
        refused = [x for x in lines if x["event"] == "service.config_refused"]
        assert len(refused) == 1 and refused[0]["level"] == "error", refused
        assert "exited with code 2" in refused[0]["message"]
        assert str(host.dir.logs_dir / "service.jsonl") in refused[0]["message"]
    finally:
        host.shutdown()
