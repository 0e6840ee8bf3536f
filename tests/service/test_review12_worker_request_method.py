"""The Worker answers a request whatever its method, as the local server does. The Python Workers SDK hands
`Default.fetch` a `workers.Request` whose `.method` is `HTTPMethod[name]`: a method that enum lacks (WebDAV's
PROPFIND, or `patch`, which fetch does not upper-case) raised KeyError out of `Default.fetch`, twice (again in the
handler meant to log it), so the client got Cloudflare's error page instead of the core's JSON 405, and the log a
traceback instead of a schema line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, SdkRequest, _entry, make_env


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


def _worker(entry: Any, tmp_path: Any, fake_runpod: Any) -> Any:
    env = make_env(tmp_path, fake_runpod.base)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    return entry.Default(Ctx(), env)


def _send(worker: Any, method: str, path: str, body: bytes = b"") -> Any:
    request = SdkRequest(JsRequest(method, "https://api.example" + path, body,
                                   {"authorization": f"Bearer {API_TOKEN}"}))
    return asyncio.run(worker.fetch(request))


def test_a_method_the_sdk_enum_lacks_gets_the_cores_json_405_not_the_runtimes_error_page(
        entry, tmp_path, fake_runpod, capsys, log_lines):
    worker = _worker(entry, tmp_path, fake_runpod)
    propfind = _send(worker, "PROPFIND", "/api/workflows")
    assert propfind.status == 405, propfind.body
    assert json.loads(propfind.body)["error"] == {"code": "method_not_allowed",
                                                  "message": "PROPFIND is not allowed here; use GET, HEAD"}
    assert propfind.headers["allow"] == "GET, HEAD"
    purge = _send(worker, "PURGE", "/healthz")
    assert purge.status == 405 and json.loads(purge.body)["error"]["code"] == "method_not_allowed"
    lower_case = _send(worker, "patch", "/api/queue/create", b"{}")
    assert lower_case.status == 405 and json.loads(lower_case.body)["error"]["code"] == "method_not_allowed"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["http"]["method"], line["http"]["status"]) for line in lines] == [
        ("PROPFIND", 405), ("PURGE", 405), ("patch", 405)]
    log_lines.extend(json.dumps(line) for line in lines)


def test_the_methods_the_sdk_knows_still_reach_the_core_through_its_request(entry, tmp_path, fake_runpod, capsys,
                                                                          log_lines):
    worker = _worker(entry, tmp_path, fake_runpod)
    assert _send(worker, "GET", "/api/workflows").status == 200
    body = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()
    created = _send(worker, "POST", "/api/queue/create", body)
    assert created.status == 202, created.body
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
