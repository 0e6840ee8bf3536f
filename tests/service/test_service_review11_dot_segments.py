"""One request, one path, on both targets. The Worker's runtime parses each request URL with a WHATWG URL parser,
which resolves `.` and `..` segments (also written `%2e`, in any case) and reads `\\` as `/` before the app sees
the path; the local server handed the app the raw path, so the same URL answered 404 locally and 200 in the
cloud. Now the app resolves the path itself, as that parser does (node's URL, the same standard, is the oracle)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess

import pytest
from ci_policy import require
from service_testkit import API_TOKEN, BUCKET, WEBHOOK_SECRET, s3_client

from service.http import resolve_path
from service.signing import webhook_signature

OTHER = "0" * 32

PATHS = ["/api/status/x/../abc", "/api/status/%2e%2e/status/abc", "/api/%2E%2e/api/./metrics", "/a/.%2E/b",
         "/a/%2e./b", "/a/b/..", "/a/b/.", "/a/b/%2e", "/..", "/.", "/a//../b", "/a\\..\\b", "/api\\metrics",
         "/a/.hidden", "/a/.../b", "/a/..%2fb", "/a/%2e%2e%2fb", "/a/..;/b", "/a/b%2e/c", "/api/metrics", "/"]


def test_the_path_the_app_sees_is_the_one_a_whatwg_url_parser_gives_the_worker():
    node = shutil.which("node")
    require(node is not None, "node (its WHATWG URL parser is the oracle)")
    script = "for (const p of JSON.parse(process.argv[1])) console.log(new URL('http://h' + p).pathname)"
    done = subprocess.run([node, "-e", script, json.dumps(PATHS)], capture_output=True, text=True, check=True,
                          timeout=60)
    expected = done.stdout.splitlines()
    assert [resolve_path(path) for path in PATHS] == expected
    assert [resolve_path(path) for path in expected] == expected  # what the Worker hands on is left as it is


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)  # the path goes out exactly as written
    conn.putheader("authorization", f"Bearer {API_TOKEN}")
    conn.endheaders()
    reply = conn.getresponse()
    answer = reply.status, reply.read()
    conn.close()
    return answer


def test_the_local_server_answers_a_dotted_path_as_the_worker_does(local_server, moto_endpoint):
    conn = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    conn.request("POST", "/api/queue/create", json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}),
                 {"authorization": f"Bearer {API_TOKEN}", "content-type": "application/json"})
    job = json.loads(conn.getresponse().read())["job_id"]
    conn.close()
    image = b"\x89PNG dotted"
    s3_client(moto_endpoint).put_object(Bucket=BUCKET, Key=f"results/{job}/0.png", Body=image,
                                        ContentType="image/png")
    same = {
        f"/api/status/x/../{job}": f"/api/status/{job}",
        f"/api/status/%2e%2e/status/%2E/{job}": f"/api/status/{job}",
        f"/api/result/results/{OTHER}/../{job}/0.png": f"/api/result/results/{job}/0.png",
        f"/api/result/results/{OTHER}/.%2e/{job}/./0.png": f"/api/result/results/{job}/0.png",
        "/api/./metrics": "/api/metrics",
        "/api\\metrics": "/api/metrics",
        "/api/status/..": "/api/",
    }
    for dotted, plain in same.items():
        assert _get(local_server.port, dotted) == _get(local_server.port, plain), dotted
    assert _get(local_server.port, f"/api/result/results/{OTHER}/../{job}/0.png") == (200, image)
    assert _get(local_server.port, f"/api/status/x/../{job}")[0] == 200


@pytest.mark.parametrize("path", ["/api/result/results/%s/..%%2F%s/0.png", "/api/result/results/%s/%%2e%%2e%%2f%s/0.png"])
def test_an_encoded_slash_is_no_segment_separator_and_its_dots_are_still_refused(svc, path):
    """A WHATWG parser leaves `..%2F` alone (it is no dot segment); the result key check refuses it on both."""
    job = svc.create()["job_id"]
    svc.put_result(job)
    status, body, _ = svc.call("GET", path % (OTHER, job))
    assert status == 404 and body["error"]["code"] == "not_found"


def test_the_core_resolves_the_path_whatever_runtime_hands_it_and_logs_the_resolved_one(svc, log_lines):
    """The App itself resolves: a runtime (or a Worker compatibility date) that hands over the raw path still gets
    the Worker's answer, and a signed webhook to a dotted path gets the webhook's own body limit."""
    job = svc.create()["job_id"]
    log_lines.clear()
    assert svc.call("GET", f"/api/x/%2E%2E/status/./{job}")[0] == 200
    assert json.loads(log_lines[-1])["http"]["path"] == f"/api/status/{job}"
    signed = f"job={job}&sig={webhook_signature(WEBHOOK_SECRET, job)}"
    assert svc.app.body_limit("/api/runpod/./webhook", signed) == svc.app.body_limit("/api/runpod/webhook", signed)
    assert svc.app.body_limit("/api/runpod/./webhook", signed) > svc.app.max_body_bytes
    status, body, _ = svc.call("POST", "/api/runpod/x/../webhook", {"id": svc.runpod_id(job), "status": "FAILED",
                                                                     "error": "boom"}, token=None, query=signed)
    assert (status, body["status"]) == (200, "failed")
