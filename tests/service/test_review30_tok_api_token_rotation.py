"""Rotating the API token without downtime: while the config's `api_token_previous` holds the old token, a client
still sending it is served (and its request's line says `data.token: "previous"`, so the operator sees the old token
drain); once it is dropped, the old token is refused again. Before, the service took one token: clients holding the
old one got 401 from the moment the new one applied. The result URLs handed out are signed by the webhook secret,
not the token: they open across a token rotation, before, during and after it."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx
import pytest
import rotation_support as rotation
from service_testkit import API_TOKEN, WEBHOOK_SECRET, LocalServer, check_log_lines, make_config, s3_client
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service import signing
from service.config import ConfigError

OLD = "tok-OldApiToken-1a3c5e7b9d2f"
NEW = "tok-NewApiToken-8e6c4a2f0b1d"
WHS_PREVIOUS = "whs-PreviousWebhookSecret-4d2b"
FLUX = {"workflow_id": "flux-schnell", "inputs": {"prompt": "a lighthouse"}}


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _lines(server: LocalServer) -> list[dict]:
    return rotation.lines_without(server, (OLD, NEW))


def _token_of(lines: list[dict], path: str) -> list[str | None]:
    """data.token of each request line for `path`, in order."""
    return [(x.get("data") or {}).get("token") for x in lines if (x.get("http") or {}).get("path") == path]


def test_a_rotation_serves_clients_holding_either_token_and_says_which_one_on_the_local_server(
        tmp_path, moto_endpoint, fake_runpod):
    s3 = s3_client(moto_endpoint)
    before = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, api_token=OLD)
    try:
        with httpx.Client(base_url=before.url, timeout=10) as client:
            job = client.post("/api/queue/create", json=FLUX, headers=_bearer(OLD)).json()["job_id"]
            image = b"\x89PNG made before the rotation"
            s3.put_object(Bucket="goldgate-results", Key=f"results/{job}/0.png", Body=image, ContentType="image/png")
            webhook = urlsplit(fake_runpod.runs[-1]["webhook"])
            done = {"id": rotation.runpod_id(before, job), "status": "COMPLETED", "delayTime": 5, "executionTime": 1500,
                    "output": {"images": [{"key": f"results/{job}/0.png", "content_type": "image/png",
                                           "bytes": len(image)}]}}
            assert client.post(f"{webhook.path}?{webhook.query}", json=done).status_code == 200
            handed_out = urlsplit(client.get(f"/api/status/{job}", headers=_bearer(OLD)).json()["results"][0]["url"])
        _lines(before)
    finally:
        before.stop()

    # The operator rotates: previous = the old token, a new current one; the server restarts on the same db.
    during = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, api_token=NEW, api_token_previous=OLD)
    try:
        with httpx.Client(base_url=during.url, timeout=10) as client:
            # a client that has not moved yet is served on every route, and so is one that has
            assert client.get(f"/api/status/{job}", headers=_bearer(OLD)).json()["status"] == "completed"
            assert client.get(f"/api/status/{job}", headers=_bearer(NEW)).json()["status"] == "completed"
            assert client.post("/api/queue/create", json=FLUX, headers=_bearer(OLD)).status_code == 202
            assert client.get("/api/workflows", headers=_bearer(OLD)).status_code == 200
            assert client.get(handed_out.path, headers=_bearer(OLD)).content == image
            # anything else is refused as before
            refused = client.get(f"/api/status/{job}", headers=_bearer("tok-SomeOtherToken-000000000"))
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
            # the result URL handed out before the rotation still opens without a token: the token signs nothing
            opened = httpx.get(f"{during.url}{handed_out.path}?{handed_out.query}", timeout=10)
            assert opened.status_code == 200 and opened.content == image
        lines = _lines(during)
    finally:
        during.stop()
    assert _token_of(lines, f"/api/status/{job}") == ["previous", None, None]
    assert _token_of(lines, "/api/queue/create") == ["previous"]
    assert _token_of(lines, "/api/workflows") == ["previous"]
    assert _token_of(lines, handed_out.path) == ["previous", None]  # by bearer, then by its signed URL
    [created] = [x for x in lines if (x.get("http") or {}).get("path") == "/api/queue/create"]
    assert created["event"] == "job.submitted" and created["job_id"]  # the handler's own event still names it

    # Once the previous token is dropped, it is refused again; the handed-out URL still opens.
    after = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, api_token=NEW)
    try:
        with httpx.Client(base_url=after.url, timeout=10) as client:
            assert client.get(f"/api/status/{job}", headers=_bearer(OLD)).status_code == 401
            assert client.get(f"/api/status/{job}", headers=_bearer(NEW)).status_code == 200
            assert client.get(f"{handed_out.path}?{handed_out.query}").status_code == 200
        _lines(after)
    finally:
        after.stop()


def test_the_worker_takes_the_previous_token_binding_and_logs_its_use(
        entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    env = make_env(tmp_path / "w", fake_runpod.base, API_TOKEN=NEW, API_TOKEN_PREVIOUS=OLD)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    old = asyncio.run(worker.fetch(JsRequest("POST", "https://api.example/api/queue/create",
                                             json.dumps(FLUX).encode(), _bearer(OLD))))
    new = asyncio.run(worker.fetch(JsRequest("GET", "https://api.example/api/workflows", None, _bearer(NEW))))
    other = asyncio.run(worker.fetch(JsRequest("GET", "https://api.example/api/workflows", None,
                                               _bearer(API_TOKEN))))
    assert (old.status, new.status, other.status) == (202, 200, 401)
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    check_log_lines(out, extra_forbidden=(OLD, NEW))
    log_lines.extend(out)
    lines = [json.loads(x) for x in out if "http" in json.loads(x)]
    assert [((x["http"]["path"], x["http"]["status"]), (x.get("data") or {}).get("token")) for x in lines] == [
        (("/api/queue/create", 202), "previous"), (("/api/workflows", 200), None), (("/api/workflows", 401), None)]


def test_the_worker_refuses_a_too_short_previous_token_binding_and_ignores_an_empty_one(entry, tmp_path):  # noqa: F811
    rotation.check_previous_binding(entry, tmp_path, "API_TOKEN_PREVIOUS")
    assert OLD not in repr(make_config(api_token=NEW, api_token_previous=OLD))


@pytest.mark.parametrize(("previous", "says"), [
    (NEW, "api_token_previous equals api_token"),
    ("tok-short-12345", "api_token_previous must be at least 16 characters"),
    (WEBHOOK_SECRET, "api_token_previous and webhook_secret (or webhook_secret_previous) must differ"),
    (WHS_PREVIOUS, "api_token_previous and webhook_secret (or webhook_secret_previous) must differ"),
    ("", "api_token_previous is empty"),
])
def test_a_previous_token_that_cannot_be_one_is_refused_at_config_load_without_echoing_it(previous, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")) as err:
        make_config(api_token=NEW, api_token_previous=previous, webhook_secret_previous=WHS_PREVIOUS)
    assert not previous or previous not in str(err.value)


def test_the_local_server_refuses_to_start_on_a_previous_token_equal_to_the_current_one(
        tmp_path, moto_endpoint, fake_runpod):
    refused = rotation.refused_start(tmp_path, moto_endpoint, fake_runpod.base, (OLD, NEW), api_token=NEW,
                            api_token_previous=NEW)
    assert "api_token_previous equals api_token" in refused["message"]


def test_both_tokens_are_compared_whichever_one_a_request_carries(monkeypatch):
    compared: list[int] = []
    real = signing.hmac.compare_digest

    def counting(a, b):
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", counting)
    for sent, used in ((NEW, "current"), (OLD, "previous"), ("tok-Neither-000000000000", None)):
        compared.clear()
        assert signing.bearer_caller(NEW, OLD, None, f"Bearer {sent}") == used
        assert len(compared) == 2, sent  # the answer's timing does not say which token matched


def test_the_previous_token_is_masked_if_it_slips_into_a_log_line(log_lines):
    line = rotation.leaked_line(log_lines, f"the old token was {OLD}", {"api_token": NEW, "api_token_previous": OLD})
    assert OLD not in line and "[redacted]" in line
    check_log_lines(log_lines, extra_forbidden=(OLD, NEW))
