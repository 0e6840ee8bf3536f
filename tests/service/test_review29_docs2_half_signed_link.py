"""A result link that reaches GET /api/result/<key> with only half its signature (`exp` without `sig`: a shell that
cut the unquoted URL at its '&'; or `sig` without `exp`) is refused 401 `unauthorized` saying that a signed link needs
both and to quote the URL, instead of "missing or wrong bearer token", which sent its holder looking for a token the
link does not need. A whole link, and the bearer token with or without half a link, work as before. In both runtimes:
the core, the local server (uvicorn over SQLite, a real subprocess) and the Cloudflare Worker entry."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

KEY = "results/" + "0" * 32 + "/0.png"


def _half_link_refusal(status: int, body: dict, headers: dict[str, str], has: str) -> None:
    assert status == 401, body
    error = body["error"]
    assert error["code"] == "unauthorized", error
    message = error["message"]
    assert "a signed result link needs both exp and sig" in message, message
    assert f"this one has only {has}" in message, message
    assert "quote the whole URL" in message, message
    assert "missing or wrong bearer token" not in message, message
    assert headers.get("www-authenticate") == "Bearer", headers


def _signed(svc) -> tuple[str, str]:
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id)
    assert svc.deliver(job_id, svc.completed(job_id, [image]))[0] == 200
    url = urlsplit(svc.call("GET", f"/api/status/{job_id}")[1]["results"][0]["url"])
    return url.path.removeprefix("/api/result/"), url.query


def test_half_a_signed_link_is_refused_saying_it_needs_both_parts(svc):
    key, query = _signed(svc)
    exp, sig = query.split("&")
    assert exp.startswith("exp=") and sig.startswith("sig=")
    assert svc.call("GET", f"/api/result/{key}", token=None, query=query)[0] == 200  # whole, as handed out
    for half, has in ((exp, "exp"), (sig, "sig"), (f"{exp}&sig=", "exp"), (f"exp=&{sig}", "sig")):
        status, body, headers = svc.call("GET", f"/api/result/{key}", token=None, query=half)
        _half_link_refusal(status, body, headers, has)
    status, _, headers = svc.call("HEAD", f"/api/result/{key}", token=None, query=exp)
    assert (status, headers.get("www-authenticate")) == (401, "Bearer")
    # With the token the half link is no matter; with a wrong one, the token is what is wrong.
    assert svc.call("GET", f"/api/result/{key}", query=exp)[0] == 200
    status, body, _ = svc.call("GET", f"/api/result/{key}", token="wrong", query=exp)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert "missing or wrong bearer token" in body["error"]["message"]
    # No signature at all: the bearer answer, as before.
    status, body, _ = svc.call("GET", f"/api/result/{key}", token=None)
    assert status == 401 and "missing or wrong bearer token" in body["error"]["message"]


def test_the_local_server_answers_half_a_link_alike(local_server):
    reply = httpx.get(f"{local_server.url}/api/result/{KEY}?exp=9999999999", timeout=10)
    _half_link_refusal(reply.status_code, reply.json(), dict(reply.headers), "exp")


def test_the_worker_entry_answers_half_a_link_alike(entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base)
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())

    async def ask(query: str) -> tuple[int, dict, dict[str, str]]:
        reply = await worker.fetch(JsRequest("GET", f"https://api.example/api/result/{KEY}?{query}", b"", {}))
        return reply.status, json.loads(reply.body), {k.lower(): v for k, v in reply.headers.items()}

    _half_link_refusal(*asyncio.run(ask("exp=9999999999")), "exp")
    _half_link_refusal(*asyncio.run(ask("sig=" + "0" * 64)), "sig")
    log_lines.extend(line for line in capsys.readouterr().out.splitlines() if line.startswith("{"))
