"""Gaps a mutation audit of `goldgate reload` (goldgate/local/platform.py, goldgate/local/stackhost.py) found, on a
real local stack: each API setting a reload applies (api.daily_spend_limit_usd, api.max_jobs_in_flight...) is named
among the settings applied when changed, and served; each of several reloads in a row reports its own changes, never
an earlier reload's; `goldgate up` of the running stack says a client's file the next start would refuse is refused,
not that a reload applies it; a database lacking a migration of this checkout is refused before any signal; `reload
all` names a stack that is down and one refused; and a service that dies after a revoking reload is restarted on the
reload's config, never the one before it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

import httpx
import yaml
from processes import wait_until
from test_review34_reload_local_stack import _platform, _reload, needs

from goldgate.local import client_tokens
from goldgate.local.state import StackDir

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")


def _result(home, stack, capsys) -> dict:
    code, out, err = _reload(home, stack, capsys, "--json")
    assert code == 0, err
    return json.loads(out)


def test_several_reloads_in_a_row_each_report_their_own_changes(home, capsys, monkeypatch) -> None:
    stack = "staging"
    platform = _platform(home, stack, monkeypatch)
    d = StackDir(home, stack)
    platform.up(stack, timeout_s=90)
    try:
        api_url, token = platform.status(stack).api_url, platform.api_token(stack)
        doc = yaml.safe_load(platform.stacks_file.read_text())
        # every setting a reload applies, each changed from its default
        doc["stacks"][stack]["api"].update(max_body_bytes=500_000, signed_url_ttl_s=1_800, max_jobs_in_flight=40,
                                           max_input_bytes=4_000_000, max_input_pixels=2048 * 2048,
                                           daily_spend_limit_usd=5)
        platform.stacks_file.write_text(yaml.safe_dump(doc))
        first = _result(home, stack, capsys)
        assert first["changed"] == [] and first["settings_applied"] == [
            "api.max_body_bytes", "api.signed_url_ttl_s", "api.max_jobs_in_flight", "api.max_input_bytes",
            "api.max_input_pixels", "api.daily_spend_limit_usd"], first
        with httpx.Client(base_url=api_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
            assert api.get("/api/metrics").json()["daily_spend"]["limit_usd"] == 5.0

        client_tokens.add_client(d, "web")
        second = _result(home, stack, capsys)
        assert (second["changed"], second["settings_applied"]) == (["secrets/clients/web (added)"], []), second
        client_tokens.revoke_client(d, "web")
        third = _result(home, stack, capsys)
        assert third["changed"] == ["secrets/clients/web (revoked)"], third
        assert third["service_pid"] != second["service_pid"] != first["service_pid"]

        # `reload all`: the stack that runs is reloaded, one that is down is named as such, and that is success
        code, out, err = _reload(home, "all", capsys)
        assert code == 0, err
        assert "prod: not up (it reads its files at `goldgate up prod`)" in out and "staging: reloaded: " in out, out

        # a client's file the next start would refuse: `up` of the running stack says so, naming the file
        (client_tokens.clients_dir(d) / "short").write_text("too-short\n")
        said: list[str] = []
        platform.up(stack, progress=said.append)
        refused = [line for line in said if "the next start would refuse them" in line]
        assert len(refused) == 1 and str(client_tokens.clients_dir(d) / "short") in refused[0], said
        assert "too-short" not in refused[0]
        (client_tokens.clients_dir(d) / "short").unlink()

        # a database that lacks a migration of this checkout (its host's goldgate is older): the new service would
        # run code that writes its columns, so nothing is sent and the service that serves goes on
        with sqlite3.connect(d.db_path) as db:
            db.execute("DELETE FROM d1_migrations WHERE name = '0010_job_client.sql'")
        serving = platform.require_running(stack)["service_pid"]
        code, _, err = _reload(home, stack, capsys)
        assert code == 1 and "predates this goldgate (migrations not applied: 0010_job_client.sql)" in err, err
        assert platform.require_running(stack)["service_pid"] == serving
        code, out, _ = _reload(home, "all", capsys)  # a stack refused among them is named, with why: exit 1
        assert code == 1 and "staging: NOT RELOADED: " in out and "migrations not applied" in out, out
        assert "prod: not up" in out
    finally:
        platform.down(stack)


def test_a_service_that_dies_after_a_revoking_reload_never_comes_back_serving_the_revoked_client(
        home, capsys, monkeypatch) -> None:
    """The host restarts a dead service on its files, and, when it refuses them, on the config the dead one ran: that
    is the reload's, so a client revoked by it stays revoked."""
    stack = "staging"
    platform = _platform(home, stack, monkeypatch)
    d = StackDir(home, stack)
    batch = client_tokens.add_client(d, "batch")
    platform.up(stack, timeout_s=90)
    try:
        api_url = platform.status(stack).api_url
        client_tokens.revoke_client(d, "batch")
        assert _result(home, stack, capsys)["changed"] == ["secrets/clients/batch (revoked)"]
        (client_tokens.clients_dir(d) / "short").write_text("too-short\n")  # refused at the next start
        dead = platform.require_running(stack)["service_pid"]
        os.kill(dead, signal.SIGKILL)
        assert wait_until(lambda: platform.require_running(stack)["service_pid"] not in (None, dead), 60)
        with httpx.Client(base_url=api_url, timeout=30) as api:
            assert wait_until(lambda: api.get("/api/workflows").status_code == 401, 30)  # it serves (no token)
            answer = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}},
                              headers={"Authorization": f"Bearer {batch}"})
        assert answer.status_code == 401, answer.text
    finally:
        platform.down(stack)
