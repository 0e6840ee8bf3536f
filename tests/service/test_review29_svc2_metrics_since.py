"""`GET /api/metrics?since=A&since=B` is refused 400 invalid_query (`field: since`), as a repeated `by` is, before
anything is read: answering for A alone hid that B was ignored. In both runtimes: the local server (uvicorn over
SQLite, a real subprocess) and the Cloudflare Worker entry over the stand-ins for its bindings."""

from __future__ import annotations

import asyncio
import json

import httpx
from service_testkit import API_TOKEN
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
TWICE = "since=2026-01-01T00:00:00Z&since=2027-01-01T00:00:00Z"


def _refused(status: int, body: dict) -> None:
    assert status == 400, body
    error = body["error"]
    assert (error["code"], error["field"]) == ("invalid_query", "since"), error
    assert "'2026-01-01T00:00:00Z', '2027-01-01T00:00:00Z'" in error["message"], error


def test_the_core_refuses_a_repeated_since_and_answers_one(svc):
    status, body, _ = svc.call("GET", "/api/metrics", query=TWICE)
    _refused(status, body)
    status, body, _ = svc.call("GET", "/api/metrics", query=TWICE + "&by=workflow_version")
    _refused(status, body)
    status, body, _ = svc.call("GET", "/api/metrics", query="since=2026-01-01T00:00:00Z&by=workflow_version")
    assert (status, body["since"], body["by_workflow_version"]) == (200, "2026-01-01T00:00:00.000Z", [])
    assert svc.call("GET", "/api/metrics", query="since=%202026-01-01&since=x")[1]["error"]["field"] == "since"


def test_the_local_server_refuses_a_repeated_since(local_server):
    reply = httpx.get(f"{local_server.url}/api/metrics?{TWICE}", headers=AUTH, timeout=10)
    _refused(reply.status_code, reply.json())
    reply = httpx.get(f"{local_server.url}/api/metrics?since=2026-01-01T00:00:00Z", headers=AUTH, timeout=10)
    assert (reply.status_code, reply.json()["since"]) == (200, "2026-01-01T00:00:00.000Z")


def test_the_worker_entry_refuses_a_repeated_since(entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base)
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())

    async def ask(query: str) -> tuple[int, dict]:
        reply = await worker.fetch(JsRequest("GET", f"https://api.example/api/metrics?{query}", b"", AUTH))
        return reply.status, json.loads(reply.body)

    _refused(*asyncio.run(ask(TWICE)))
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
