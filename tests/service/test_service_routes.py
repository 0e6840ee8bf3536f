"""Every route of the core App with good and bad input (real SQLite, moto S3, a fake RunPod on loopback)."""

from __future__ import annotations

import json

import pytest
from service_testkit import API_TOKEN, RUNPOD_KEY, WEBHOOK_SECRET, LosesTheRunPodIdWrite

from service.signing import result_signature, webhook_signature


def test_healthz_answers_ok_without_a_token(svc):
    status, body, _ = svc.call("GET", "/healthz", token=None)
    assert (status, body) == (200, {"status": "ok", "stack": "test"})


def test_unknown_route_is_404_json_and_wrong_method_is_405_with_allow(svc):
    status, body, _ = svc.call("GET", "/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, headers = svc.call("GET", "/api/queue/create")
    assert status == 405 and body["error"]["code"] == "method_not_allowed" and headers["allow"] == "POST"
    status, _, headers = svc.call("DELETE", "/api/status/" + "a" * 32)
    assert status == 405 and headers["allow"] == "GET, HEAD"  # HEAD is answered wherever GET is
    status, _, headers = svc.call("HEAD", "/api/queue/create")
    assert status == 405 and headers["allow"] == "POST"


def test_workflows_lists_parameters_and_needs_the_bearer_token(svc):
    status, body, _ = svc.call("GET", "/api/workflows")
    assert status == 200
    by_id = {w["id"]: w for w in body["workflows"]}
    assert set(by_id) == {"sdxl-txt2img", "flux-schnell"}
    width = next(p for p in by_id["sdxl-txt2img"]["parameters"] if p["name"] == "width")
    assert width == {"name": "width", "type": "integer", "required": False, "default": 1024, "min": 256,
                     "max": 2048, "choices": None}
    assert by_id["sdxl-txt2img"]["version"] == "sdxl-txt2img@1.0.0"
    for token in (None, "wrong-token-value-123456", API_TOKEN + "x"):
        status, body, headers = svc.call("GET", "/api/workflows", token=token)
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert headers["www-authenticate"] == "Bearer"


def test_create_writes_the_job_then_calls_runpod_with_input_webhook_and_policy(svc):
    job = svc.create("a red fox", width=512, sampler="dpmpp_2m")
    assert job["status"] == "queued" and len(job["job_id"]) == 32 and len(job["trace_id"]) == 32
    [run] = svc.fake.runs
    assert run["input"] == {"workflow_id": "sdxl-txt2img", "workflow_version": "sdxl-txt2img@1.0.0",
                            "inputs": {"prompt": "a red fox", "width": 512, "sampler": "dpmpp_2m", "cfg": 7.0,
                                       "tiling": False},
                            "job_id": job["job_id"], "trace_id": job["trace_id"],
                            "result_prefix": f"results/{job['job_id']}/"}
    sig = webhook_signature(WEBHOOK_SECRET, job["job_id"])
    assert run["webhook"] == f"http://api.test/api/runpod/webhook?job={job['job_id']}&sig={sig}"
    assert run["policy"] == {"executionTimeout": 600000, "ttl": 86400000}
    text = json.dumps(run["input"])
    for secret in (API_TOKEN, WEBHOOK_SECRET, RUNPOD_KEY, sig):
        assert secret not in text
    row = svc.job(job["job_id"])
    assert row["status"] == "queued" and row["runpod_job_id"].endswith("-u1")


def test_create_takes_the_trace_id_from_a_w3c_traceparent(svc):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "flux-schnell", "inputs": {"prompt": "x"}},
                               headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert status == 202 and body["trace_id"] == trace


@pytest.mark.parametrize(("raw", "code", "needle"), [
    (b"{not json", "invalid_json", "not valid JSON"),
    (b"", "invalid_json", "empty"),
    (b"\xff\xfe", "invalid_json", "UTF-8"),
    (b"[1, 2]", "invalid_body", "JSON object"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}, "secret": 1}', "unknown_field", "secret"),
    (b'{"workflow_id": 7, "inputs": {}}', "invalid_workflow_id", "workflow_id"),
    (b'{"workflow_id": "no-such-flow", "inputs": {}}', "unknown_workflow", "no-such-flow"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": []}', "invalid_inputs", "inputs"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {}}', "missing_input", "inputs.prompt"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": 5}}', "invalid_input", "inputs.prompt must be a string"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": ""}}', "invalid_input", "at least 1"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": 4096}}', "invalid_input",
     "inputs.width must be at most 2048"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": "512"}}', "invalid_input",
     "inputs.width must be an integer"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": true}}', "invalid_input", "integer"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "cfg": "high"}}', "invalid_input", "inputs.cfg"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "tiling": 1}}', "invalid_input", "inputs.tiling"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "sampler": "ddim"}}', "invalid_input",
     "inputs.sampler must be one of"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "steps": 3}}', "unknown_input", "inputs.steps"),
    # numbers and nesting Python's own parser cannot take: a 400, not a 500
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "width": ' + b"9" * 5000 + b"}}", "invalid_json",
     "more than 4300 digits"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "invalid_json",
     "nested too deeply"),
    (b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x", "cfg": 1' + b"0" * 400 + b"}}", "invalid_input",
     "inputs.cfg must be at most 30"),
])
def test_create_refuses_bad_input_with_400_naming_the_field(svc, raw, code, needle):
    status, body, _ = svc.call("POST", "/api/queue/create", raw=raw)
    assert status == 400, body
    assert body["error"]["code"] == code and needle in body["error"]["message"], body
    assert svc.fake.runs == [] and svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 0


def test_create_refuses_an_oversized_body_with_413(svc):
    big = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x" * 70_000}}).encode()
    status, body, _ = svc.call("POST", "/api/queue/create", raw=big)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body, _ = svc.call("POST", "/api/queue/create", raw=b"{}", headers={"content-length": "99999999"})
    assert status == 413


def test_create_needs_the_bearer_token(svc):
    status, _body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img"}, token=None)
    assert status == 401 and svc.fake.runs == []


@pytest.mark.parametrize(("mode", "status", "code", "retry_after"), [("refuse", 502, "runpod_refused", None),
                                                                     ("busy", 503, "runpod_unavailable", "5"),
                                                                     ("error", 503, "runpod_unavailable", None),
                                                                     ("garbage", 503, "runpod_unavailable", None)])
def test_create_marks_the_job_failed_when_runpod_refuses_or_fails(svc, mode, status, code, retry_after):
    svc.fake.run_mode = mode
    got, body, headers = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                "inputs": {"prompt": "x"}})
    assert got == status and body["error"]["code"] == code
    # Retry later only when RunPod said it did not take the job (429); a 5xx or garbage may have reached it
    assert headers.get("retry-after") == retry_after
    job_id = body["error"]["job_id"]
    assert "marked failed" in body["error"]["message"]
    row = svc.job(job_id)
    assert row["status"] == "failed" and row["runpod_job_id"] is None and "RunPod" in row["error"]
    [metric] = svc.rows("SELECT * FROM job_metrics")
    assert metric["job_id"] == job_id and metric["status"] == "failed"


def test_create_answers_503_when_runpod_is_unreachable(svc):
    svc.fake.stop()
    status, body, headers = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                   "inputs": {"prompt": "x"}})
    assert status == 503 and body["error"]["code"] == "runpod_unavailable"
    assert "could not be reached" in body["error"]["message"]
    assert "retry-after" not in headers  # RunPod may have it (unknown outcome): the same request again bills twice
    assert svc.job(body["error"]["job_id"])["status"] == "failed"
    svc.fake.start = lambda: svc.fake  # already stopped; the fixture's stop must not fail
    svc.fake.stop = lambda: None


def test_status_shows_a_queued_job_and_refuses_unknown_or_malformed_ids(svc):
    job = svc.create()
    status, body, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    assert status == 200
    assert body["status"] == "queued" and body["results"] == [] and body["error"] is None
    assert body["trace_id"] == job["trace_id"] and body["runpod_job_id"].endswith("-u1")
    assert body["workflow_version"] == "sdxl-txt2img@1.0.0"
    assert body["worker_image_tag"] == "local/worker@sha256:" + "a" * 64
    assert set(body["timings"]) >= {"created_at", "finished_at", "queue_ms", "run_ms", "e2e_ms"}
    for bad in ("f" * 32, "not-a-job", "..%2F..%2Fetc", "A" * 32):
        status, body, _ = svc.call("GET", f"/api/status/{bad}")
        assert status == 404 and body["error"]["code"] == "unknown_job"
    assert svc.call("GET", f"/api/status/{job['job_id']}", token=None)[0] == 401


def _complete(svc, data=b"\x89PNG result", content_type="image/png"):
    job = svc.create()
    image = svc.put_result(job["job_id"], data=data, content_type=content_type)
    _status, body, _ = svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))
    assert body["reason"] == "applied"
    return job, image


def test_status_hands_out_signed_result_urls_that_stream_the_object(svc):
    job, image = _complete(svc, data=b"\x89PNG" + bytes(range(256)) * 40)
    status, body, _ = svc.call("GET", f"/api/status/{job['job_id']}")
    assert body["status"] == "completed"
    [result] = body["results"]
    assert {k: result[k] for k in ("key", "content_type", "bytes")} == {k: image[k] for k in ("key", "content_type",
                                                                                              "bytes")}
    url = result["url"]
    assert url.startswith("http://api.test/api/result/results/")
    path, query = url[len("http://api.test"):].split("?")
    status, data, headers = svc.call("GET", path, token=None, query=query)
    assert status == 200 and data == b"\x89PNG" + bytes(range(256)) * 40
    assert headers["content-type"] == "image/png" and headers["content-length"] == str(len(data))
    # the bearer token works too
    status, data, _ = svc.call("GET", path)
    assert status == 200 and len(data) == image["bytes"]


def test_result_urls_expire_and_cannot_be_tampered_with(svc):
    job, image = _complete(svc)
    key = image["key"]
    exp = int(svc.clock[0]) + 60
    good = result_signature(WEBHOOK_SECRET, key, exp)
    assert svc.call("GET", f"/api/result/{key}", token=None, query=f"exp={exp}&sig={good}")[0] == 200
    svc.clock[0] += 61
    status, body, _ = svc.call("GET", f"/api/result/{key}", token=None, query=f"exp={exp}&sig={good}")
    assert status == 403 and body["error"]["code"] == "url_expired_or_invalid"
    exp2 = int(svc.clock[0]) + 60
    for query in (f"exp={exp2}&sig={good}", f"exp={exp2}&sig={'0' * 64}", f"exp={exp2}&sig=zz", "exp=abc&sig=1",
                  f"exp={exp2}&sig={webhook_signature(WEBHOOK_SECRET, job['job_id'])}"):
        assert svc.call("GET", f"/api/result/{key}", token=None, query=query)[0] == 403, query
    assert svc.call("GET", f"/api/result/{key}", token=None)[0] == 401


@pytest.mark.parametrize("path", [
    "/api/result/../../etc/passwd",
    "/api/result/results/../secrets/x.png",
    "/api/result/results/" + "a" * 32 + "/../../x.png",
    "/api/result/%2e%2e/%2e%2e/etc/passwd",
    "/api/result/results%2F..%2F..%2Fetc%2Fpasswd",
    "/api/result/results/" + "a" * 32 + "/%2e%2e%2fx.png",
    "/api/result/results/" + "a" * 32 + "/%252e%252e%252fx.png",
    "/api/result/%2Fetc%2Fpasswd",
    "/api/result//etc/passwd",
    "/api/result/results/" + "a" * 32 + "/..",
    "/api/result/results/" + "a" * 32 + "/x%00.png",
    "/api/result/results/" + "a" * 32 + "/..%5c..%5cx.png",
    "/api/result/other/" + "a" * 32 + "/x.png",
    "/api/result/results/" + "a" * 32,
])
def test_result_refuses_traversal_and_non_result_keys(svc, path):
    status, body, _ = svc.call("GET", path)
    assert status == 404 and body["error"]["code"] == "not_found"


def test_result_for_a_missing_object_is_404(svc):
    status, body, _ = svc.call("GET", "/api/result/results/" + "b" * 32 + "/0.png")
    assert status == 404 and "no result object" in body["error"]["message"]


def test_recover_applies_one_runpod_status_through_the_transition(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    image = svc.put_result(job["job_id"])
    svc.fake.set_status(rid, svc.completed(job["job_id"], [image]))
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert status == 200 and body == {"applied": True, "reason": "applied", "status": "completed",
                                      "runpod_status": "COMPLETED"}
    assert svc.fake.status_calls == [rid]
    # the same answer again changes nothing; the webhook that finally arrives is a duplicate
    assert svc.call("POST", f"/api/admin/recover/{job['job_id']}")[1]["reason"] == "duplicate"
    assert svc.deliver(job["job_id"], svc.completed(job["job_id"], [image]))[1]["reason"] == "duplicate"
    assert len(svc.rows("SELECT * FROM job_metrics")) == 1


def test_recover_of_a_job_runpod_forgot_marks_it_failed(svc):
    job = svc.create()
    svc.fake.jobs.clear()
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert status == 200 and body["status"] == "failed" and body["applied"] is True
    assert "TTL expired" in svc.job(job["job_id"])["error"]


def test_recover_records_a_runpod_error_holding_a_lone_surrogate_as_its_webhook_does(svc, log_lines):
    """A worker error naming a file whose name is not UTF-8 (Python keeps such bytes as lone surrogates, e.g.
    \\udce9) reaches RunPod's /status as a lone \\udce9 escape. The webhook reads it as U+FFFD; the recovery
    hashed it as it came, raised UnicodeEncodeError and answered 500 on every try: the job was unrecoverable."""
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    svc.fake.set_status(rid, {"id": rid, "status": "FAILED", "delayTime": 5, "executionTime": 9,
                              "error": "model file caf\udce9.safetensors missing"})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert (status, body.get("status")) == (200, "failed"), body
    assert svc.job(job["job_id"])["error"] == "model file caf\ufffd.safetensors missing"


def test_recover_refuses_unknown_jobs_jobs_never_submitted_and_missing_token(svc):
    assert svc.call("POST", "/api/admin/recover/" + "c" * 32)[0] == 404
    svc.fake.run_mode = "refuse"
    _, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    status, body, _ = svc.call("POST", f"/api/admin/recover/{body['error']['job_id']}")
    assert status == 409 and body["error"]["code"] == "not_submitted"
    assert svc.call("POST", "/api/admin/recover/" + "c" * 32, token=None)[0] == 401


def test_recover_answers_503_when_runpod_is_down(svc):
    job = svc.create()
    svc.fake.status_mode = "error"
    status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
    assert status == 503 and body["error"]["code"] == "runpod_unavailable"
    assert svc.job(job["job_id"])["status"] == "queued"


def test_metrics_reports_counts_percentiles_and_cost(svc):
    _complete(svc)
    job = svc.create()
    svc.deliver(job["job_id"], {"id": svc.runpod_id(job["job_id"]), "status": "FAILED", "delayTime": 100,
                                "executionTime": 1200, "error": "CUDA out of memory"})
    status, body, _ = svc.call("GET", "/api/metrics")
    assert status == 200
    overall = body["overall"]
    assert overall["count"] == 2 and overall["completed"] == 1 and overall["errors"] == 1
    assert overall["error_rate"] == 0.5
    assert overall["run_ms"] == {"p50": 1200, "p95": 2500, "p99": 2500}
    assert overall["cost_total_usd"] == pytest.approx(0.00031 * 3 + 0.00031 * 2)
    assert [g["worker_image_tag"] for g in body["by_worker_image_tag"]] == [
        "local/worker@sha256:" + "a" * 64, "local/worker@sha256:" + "b" * 64]
    status, body, _ = svc.call("GET", "/api/metrics", query="since=2099-01-01T00:00:00Z")
    assert status == 200 and body["overall"]["count"] == 0 and body["overall"]["e2e_ms"]["p50"] is None


def test_metrics_refuses_a_bad_since_and_a_missing_token(svc):
    status, body, _ = svc.call("GET", "/api/metrics", query="since=yesterday")
    assert status == 400 and body["error"]["code"] == "invalid_since" and "ISO 8601" in body["error"]["message"]
    assert svc.call("GET", "/api/metrics", token=None)[0] == 401


def test_the_bearer_scheme_is_case_insensitive(svc):
    for scheme in ("bearer", "BEARER", "Bearer"):
        status, _, _ = svc.call("GET", "/api/workflows", token=None, headers={"authorization": f"{scheme} {API_TOKEN}"})
        assert status == 200, scheme
    for header in (f"Basic {API_TOKEN}", f"Bearer{API_TOKEN}", "Bearer ", f"Token {API_TOKEN}"):
        assert svc.call("GET", "/api/workflows", token=None, headers={"authorization": header})[0] == 401, header


@pytest.mark.parametrize("exp", ["%C2%B2", "%C2%B9%C2%B2%C2%B3", "%D9%A1%D9%A2"])
def test_a_result_url_whose_exp_has_non_ascii_digits_is_refused_not_a_500(svc, exp):
    _job, image = _complete(svc)
    status, body, _ = svc.call("GET", f"/api/result/{image['key']}", token=None, query=f"exp={exp}&sig={'0' * 64}")
    assert status == 403 and body["error"]["code"] == "url_expired_or_invalid"


def test_recover_answers_502_when_runpod_answers_with_a_status_it_does_not_document(svc):
    job = svc.create()
    rid = svc.runpod_id(job["job_id"])
    for answer in ({"id": rid, "status": "PAUSED"}, {"id": rid, "status": ["COMPLETED"]}):
        svc.fake.set_status(rid, answer)
        status, body, _ = svc.call("POST", f"/api/admin/recover/{job['job_id']}")
        assert status == 502 and body["error"]["code"] == "runpod_bad_answer", body
        assert "RunPod" in body["error"]["message"]
    assert svc.job(job["job_id"])["status"] == "queued"


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00%2B01:00"])
def test_metrics_refuses_a_since_outside_the_representable_years_with_400(svc, since):
    status, body, _ = svc.call("GET", "/api/metrics", query=f"since={since}")
    assert status == 400 and body["error"]["code"] == "invalid_since", body


def test_create_answers_202_when_runpod_took_the_job_but_recording_its_id_failed(svc, log_lines):
    """RunPod has the job and will run it (its webhook adopts the id): a 500 would have the client
    submit the same image again and pay twice."""
    svc.app.db = LosesTheRunPodIdWrite(svc.db)
    status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "x"}})
    assert status == 202 and body["status"] == "queued", body
    assert len(svc.fake.runs) == 1  # RunPod took it
    assert svc.job(body["job_id"])["runpod_job_id"] is None
    [line] = [json.loads(line) for line in log_lines if json.loads(line)["job_id"] == body["job_id"]]
    assert line["level"] == "error" and line["runpod_job_id"]  # the operator can still find it at RunPod
    svc.app.db = svc.db
    rid = line["runpod_job_id"]
    image = svc.put_result(body["job_id"])
    delivery = {"id": rid, "status": "COMPLETED", "delayTime": 5, "executionTime": 9, "output": {"images": [image]}}
    assert svc.deliver(body["job_id"], delivery)[1]["status"] == "completed"
    assert svc.job(body["job_id"])["runpod_job_id"] == rid
