"""Rotating the webhook secret without draining: the jobs in flight keep their webhooks and the result URLs
handed out keep working while the old secret is the config's `webhook_secret_previous`. Before, a new secret
answered every in-flight job's webhook 401 for good (RunPod gives up; each job recovered by hand) and broke
every signed result URL already handed out."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import rotation_support as rotation
from service_testkit import API_TOKEN, RUNPOD_KEY, LocalServer, check_log_lines, make_config, s3_client
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.config import ConfigError
from service.signing import result_signature, webhook_signature

OLD = "whs-OldWebhookSecret-3c5e7a9b1d"
NEW = "whs-NewWebhookSecret-8f6d4b2a0c"
AUTH = {"authorization": f"Bearer {API_TOKEN}"}
FLUX = {"workflow_id": "flux-schnell", "inputs": {"prompt": "a lighthouse"}}


def _webhook_query(run_body: dict) -> dict[str, str]:
    """The job and sig of the webhook URL the service gave RunPod in a /run body."""
    query = parse_qs(urlsplit(run_body["webhook"]).query)
    return {"job": query["job"][0], "sig": query["sig"][0]}


def _completed(rid: str, key: str, size: int) -> dict:
    return {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 1500,
            "output": {"images": [{"key": key, "content_type": "image/png", "bytes": size}]}}


def _lines(server: LocalServer) -> list[dict]:
    return rotation.lines_without(server, (OLD, NEW))


def _request_line(lines: list[dict], path: str) -> dict:
    [line] = [x for x in lines if (x.get("http") or {}).get("path") == path]
    return line


def _sig(secret: str, job_id: str) -> str:
    return webhook_signature(secret, job_id)


def _result_sig(secret: str, url: str) -> str:
    parts = urlsplit(url)
    key = parts.path.removeprefix("/api/result/")
    return result_signature(secret, key, int(parse_qs(parts.query)["exp"][0]))


def test_a_rotation_keeps_in_flight_webhooks_and_handed_out_result_urls_working_on_the_local_server(
        tmp_path, moto_endpoint, fake_runpod):
    s3 = s3_client(moto_endpoint)
    before = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, webhook_secret=OLD)
    try:
        with httpx.Client(base_url=before.url, headers=AUTH, timeout=10) as client:
            done, in_flight = (client.post("/api/queue/create", json=FLUX).json()["job_id"] for _ in range(2))
            done_hook, flight_hook = (_webhook_query(run) for run in fake_runpod.runs)
            assert (done_hook["job"], flight_hook["job"]) == (done, in_flight)
            image = b"\x89PNG done before the rotation"
            s3.put_object(Bucket="goldgate-results", Key=f"results/{done}/0.png", Body=image, ContentType="image/png")
            hook = client.post("/api/runpod/webhook", params=done_hook, headers={"authorization": ""},
                               json=_completed(rotation.runpod_id(before, done), f"results/{done}/0.png", len(image)))
            assert hook.json()["applied"] is True
            handed_out = client.get(f"/api/status/{done}").json()["results"][0]["url"]
        _lines(before)
    finally:
        before.stop()

    # The operator rotates: previous = the old secret, a new current one; the server restarts on the same db.
    during = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, webhook_secret=NEW, webhook_secret_previous=OLD)
    try:
        with httpx.Client(base_url=during.url, headers=AUTH, timeout=10) as client:
            # RunPod delivers the in-flight job's outcome to the URL it was given before the rotation
            image = b"\x89PNG finished after the rotation"
            s3.put_object(Bucket="goldgate-results", Key=f"results/{in_flight}/0.png", Body=image,
                          ContentType="image/png")
            hook = client.post("/api/runpod/webhook", params=flight_hook, headers={"authorization": ""},
                               json=_completed(rotation.runpod_id(during, in_flight), f"results/{in_flight}/0.png",
                                               len(image)))
            assert hook.status_code == 200 and hook.json() == {"applied": True, "reason": "applied",
                                                                "status": "completed"}
            # the result URL a client got before the rotation still opens, without a token
            path = urlsplit(handed_out)
            fetched = httpx.get(f"{during.url}{path.path}?{path.query}", timeout=10)
            assert fetched.status_code == 200 and fetched.content == b"\x89PNG done before the rotation"
            # a new job's webhook URL is signed with the new secret, and a delivery to it is not "previous"
            fresh = client.post("/api/queue/create", json=FLUX).json()["job_id"]
            fresh_hook = _webhook_query(fake_runpod.runs[-1])
            assert fresh_hook["job"] == fresh
            old_signed = client.post("/api/runpod/webhook", headers={"authorization": ""},
                                     params={"job": fresh, "sig": _sig(OLD, fresh)},
                                     json={"id": rotation.runpod_id(during, fresh), "status": "IN_PROGRESS"})
            assert old_signed.status_code == 200  # accepted while previous is set, but not what RunPod was given
            assert fresh_hook["sig"] == _sig(NEW, fresh)
            new_url = client.get(f"/api/status/{in_flight}").json()["results"][0]["url"]
            assert parse_qs(urlsplit(new_url).query)["sig"][0] == _result_sig(NEW, new_url)
            assert httpx.get(new_url.replace("http://127.0.0.1:1", during.url), timeout=10).status_code == 200
        lines = _lines(during)
    finally:
        during.stop()
    hooks = [x for x in lines if (x.get("http") or {}).get("path") == "/api/runpod/webhook"]
    assert [(x["job_id"], (x.get("data") or {}).get("signed_with")) for x in hooks] == [
        (in_flight, "previous"), (fresh, "previous")]
    assert hooks[0]["event"] == "job.finished" and hooks[0]["data"]["source"] == "webhook"  # its own data kept
    downloads = [x for x in lines if (x.get("http") or {}).get("path", "").startswith("/api/result/")]
    assert [(x["http"]["path"], (x.get("data") or {}).get("signed_with")) for x in downloads] == [
        (path.path, "previous"), (urlsplit(new_url).path, None)]

    # Once the previous secret is dropped, what it signed is refused again.
    after = rotation.start(tmp_path, moto_endpoint, fake_runpod.base, webhook_secret=NEW)
    try:
        with httpx.Client(base_url=after.url, timeout=10) as client:
            assert client.post("/api/runpod/webhook", params=flight_hook, json={}).status_code == 401
            assert client.get(f"{path.path}?{path.query}").status_code == 403
        _lines(after)
    finally:
        after.stop()


def test_the_worker_accepts_the_previous_secret_with_the_webhooks_larger_limit_and_logs_it(
        entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    old_env = make_env(tmp_path / "old", fake_runpod.base, WEBHOOK_SECRET=OLD, MAX_BODY_BYTES="1024")
    entry.Default._app = entry.build_app(old_env, fetch=Fetch())
    created = asyncio.run(entry.Default(Ctx(), old_env).fetch(JsRequest(
        "POST", "https://api.example/api/queue/create", json.dumps(FLUX).encode(), AUTH)))
    job_id = json.loads(created.body)["job_id"]
    rid = old_env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    # the deploy with the rotated secrets: same D1 and R2, a new isolate
    env = make_env(tmp_path / "new", fake_runpod.base, WEBHOOK_SECRET=NEW, WEBHOOK_SECRET_PREVIOUS=OLD,
                   MAX_BODY_BYTES="1024")
    env.DB, env.RESULTS = old_env.DB, old_env.RESULTS
    fetch = Fetch()
    entry.Default._app = entry.build_app(env, fetch=fetch)
    worker = entry.Default(Ctx(), env)
    # RunPod echoes the job's input beside the outcome: over the clients' 1,024 bytes, within the webhook's limit
    body = json.dumps({"id": rid, "status": "IN_PROGRESS", "input": {"echo": "x" * 4000}}).encode()
    chunks = iter([body[:2000], body[2000:]])  # chunked: the Worker picks the limit from the signature
    hook = asyncio.run(worker.fetch(JsRequest(
        "POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig={_sig(OLD, job_id)}", chunks)))
    assert hook.status == 200 and json.loads(hook.body)["applied"] is True
    fresh = asyncio.run(worker.fetch(JsRequest("POST", "https://api.example/api/queue/create",
                                               json.dumps(FLUX).encode(), AUTH)))
    assert fresh.status == 202
    [(_, init)] = fetch.calls
    run = json.loads(init["body"])
    fresh_id = json.loads(fresh.body)["job_id"]
    assert _webhook_query(run) == {"job": fresh_id, "sig": _sig(NEW, fresh_id)}
    assert OLD not in init["body"] and NEW not in init["body"]  # RunPod echoes input: no secret goes in it
    out = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    check_log_lines(out, extra_forbidden=(OLD, NEW))
    log_lines.extend(out)
    [line] = [json.loads(x) for x in out if json.loads(x).get("job_id") == job_id
              and json.loads(x)["http"]["path"] == "/api/runpod/webhook"]
    assert line["data"]["signed_with"] == "previous" and line["reason"] == "applied"


@pytest.mark.parametrize(("previous", "says"), [
    (NEW, "webhook_secret_previous equals webhook_secret"),
    ("whs-short-1234", "webhook_secret_previous must be at least 16 characters"),
    (API_TOKEN, "api_token and webhook_secret_previous must differ"),
    ("", "webhook_secret_previous is empty"),
])
def test_a_previous_secret_that_cannot_be_one_is_refused_at_config_load_without_echoing_it(previous, says):
    with pytest.raises(ConfigError, match=says) as err:
        make_config(webhook_secret=NEW, webhook_secret_previous=previous)
    assert not previous or previous not in str(err.value)


def test_the_local_server_refuses_to_start_on_a_previous_secret_equal_to_the_current_one(
        tmp_path, moto_endpoint, fake_runpod):
    refused = rotation.refused_start(tmp_path, moto_endpoint, fake_runpod.base, (OLD, NEW), webhook_secret=NEW,
                            webhook_secret_previous=NEW)
    assert "webhook_secret_previous equals webhook_secret" in refused["message"]


def test_the_worker_refuses_a_too_short_previous_secret_binding_and_ignores_an_empty_one(entry, tmp_path):  # noqa: F811
    rotation.check_previous_binding(entry, tmp_path, "WEBHOOK_SECRET_PREVIOUS")
    assert OLD not in repr(make_config(webhook_secret=NEW, webhook_secret_previous=OLD))


def test_the_previous_secret_is_masked_if_it_slips_into_a_log_line(log_lines, tmp_path):
    line = rotation.leaked_line(log_lines, f"the old secret was {OLD}",
                                {"webhook_secret": NEW, "webhook_secret_previous": OLD}, data={"k": RUNPOD_KEY})
    assert OLD not in line and "[redacted]" in line
    check_log_lines(log_lines, extra_forbidden=(OLD, NEW))
