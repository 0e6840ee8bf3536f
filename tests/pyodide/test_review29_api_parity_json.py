"""Hostile JSON bodies get the same answer from both runtimes: the local server (`python -m service.local_server`:
uvicorn, SQLite, moto) and the Worker's real upload under real Pyodide (`run_worker.mjs --serve`), one fake RunPod
behind both (runtime_parity.py's harness). Each body goes as raw HTTP/1.1 to create, cancel, recover and a signed
webhook: status, headers, JSON body and log lines must match once ids and times are masked, nothing may be a 5xx,
and no refused request may call RunPod or change the job.

The finding: an object naming a key twice (`{"workflow_id": "a", "workflow_id": "b"}`, or a repeated input) was
taken in both runtimes, the last value winning, while a proxy or WAF in front may read the first: it is now a 400
`invalid_json` naming the key, for every JSON body the API reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import runtime_parity as rp
from test_worker_in_pyodide import node  # noqa: F401 - the fixture: node with the pinned Pyodide installed

from service.signing import webhook_signature

REPO = Path(__file__).resolve().parents[2]
CREATE = "/api/queue/create"

# (label, route, body): route is create, cancel, recover or webhook (the last three on one queued job).
BODIES: list[tuple[str, str, bytes]] = [
    ("create workflow_id twice", "create",
     b'{"workflow_id": "nope", "workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}}'),
    ("create input twice", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "prompt": "b"}}'),
    ("create inputs twice", "create",
     b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}, "inputs": {"prompt": "b"}}'),
    ("create surrogate keys that are one key", "create",
     b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "\\ud800": 1, "\\udc00": 2}}'),
    ("create escaped and plain key", "create",
     b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "\\u0070rompt": "b"}}'),
    ("create 1e400", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "cfg": 1e400}}'),
    ("create -0", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "cfg": -0}}'),
    ("create 5000 digits", "create",
     b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "cfg": ' + b"9" * 5000 + b"}}"),
    ("create NaN", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "cfg": NaN}}'),
    ("create Infinity", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a", "cfg": Infinity}}'),
    ("create nested 10000", "create", b"[" * 10000 + b"]" * 10000),
    ("create lone surrogate key", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"\\ud800": "a"}}'),
    ("create overlong UTF-8", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "\xc0\xaf"}}'),
    ("create encoded surrogate", "create", b'{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "\xed\xa0\x80"}}'),
    ("create BOM", "create", b'\xef\xbb\xbf{"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a"}}'),
    ("cancel key twice", "cancel", b'{"a": 1, "a": 2}'),
    ("recover runpod_job_id twice", "recover", b'{"runpod_job_id": "x-u1", "runpod_job_id": "y-u1"}'),
    ("webhook status twice", "webhook", b'{"id": "{rp}", "status": "FAILED", "status": "COMPLETED", "error": "x"}'),
    ("webhook NaN", "webhook", b'{"id": "{rp}", "status": "FAILED", "executionTime": NaN, "error": "x"}'),
]

# The bodies that are I-JSON, refused for what they ask (the shipped sdxl-txt2img's cfg is at least 1).
NOT_JSON_BUT = {"create -0": "invalid_input", "create lone surrogate key": "unknown_input"}


def _run(rt: rp.Runtime, fake: rp.FakeRunPod) -> list[dict[str, Any]]:
    auth = [rp.AUTH, rp.JSONCT]
    job = json.loads(rp.send(rt.port, "POST", CREATE, auth, rp.create_body("held"))["body"])["job_id"]
    rid = fake.by_job[job]
    targets = {"create": CREATE, "cancel": f"/api/cancel/{job}", "recover": f"/api/admin/recover/{job}",
               "webhook": f"/api/runpod/webhook?job={job}&sig={webhook_signature(rp.HOOK_SECRET, job)}"}
    out = []
    for label, route, body in BODIES:
        before, called = rt.line_count(), len(fake.calls)
        answer = rp.send(rt.port, "POST", targets[route], [] if route == "webhook" else auth,
                         body.replace(b"{rp}", rid.encode()))
        lines = rp.wait_for(lambda n=before: rt.lines_since(n) or None, f"{rt.name} log line of {label}", 30)
        answer["lines"] = [json.loads(line) for line in lines]
        answer["json"] = json.loads(answer["body"])
        answer["runpod"] = [(verb, rp.mask(path), rp.mask(sent.decode("utf-8", "surrogateescape")))
                            for verb, path, sent in fake.calls[called:]]
        answer["label"], answer["target"] = label, targets[route]
        answer["request"] = {"method": "POST", "target": targets[route]}
        out.append(answer)
    status = json.loads(rp.send(rt.port, "GET", f"/api/status/{job}", auth, None)["body"])
    out.append({"status": status["status"], "same_runpod_job": status["runpod_job_id"] == rid, "error": status["error"],
                "ended_jobs": json.loads(rp.send(rt.port, "GET", "/api/metrics", auth, None)["body"])["overall"]["count"]})
    return out


@pytest.mark.parametrize("pyodide", ["pyodide", "pyodide-py313"])
def test_hostile_json_bodies_are_refused_alike_by_both_runtimes_and_a_repeated_key_by_name(pyodide, node,  # noqa: F811
                                                                                          tmp_path):
    scratch = tmp_path / pyodide
    scratch.mkdir()
    fake = rp.FakeRunPod()
    runtimes: list[rp.Runtime] = []
    try:
        runtimes.append(rp.Local(REPO, scratch, fake.base))
        runtimes.append(rp.Cloud(REPO, scratch, fake.base, pyodide))
        local, cloud = (_run(rt, fake) for rt in runtimes)
    finally:
        for rt in runtimes:
            rt.stop()
        fake.server.shutdown()
        fake.server.server_close()
    *local_answers, local_job = local
    *cloud_answers, cloud_job = cloud
    differ = [f"{a['label']}: " + "; ".join(diffs) for a, b in zip(local_answers, cloud_answers, strict=True)
              if (diffs := rp.compare(a, b))]
    assert not differ, "\n".join(differ)
    for answer in local_answers:
        assert (answer["status"], answer["runpod"]) == (400, []), (answer["label"], answer["status"], answer["json"])
        assert answer["json"]["error"]["code"] == NOT_JSON_BUT.get(answer["label"], "invalid_json"), answer["json"]
    named = {a["label"]: a["json"]["error"]["message"] for a in local_answers}
    for label, key in (("create workflow_id twice", "workflow_id"), ("create input twice", "prompt"),
                       ("create inputs twice", "inputs"), ("create surrogate keys that are one key", "\ufffd"),
                       ("create escaped and plain key", "prompt"), ("cancel key twice", "a"),
                       ("recover runpod_job_id twice", "runpod_job_id"), ("webhook status twice", "status")):
        assert f'the key "{key}" twice' in named[label], (label, named[label])
    # Nothing they sent changed the held job or made another.
    held = {"status": "queued", "same_runpod_job": True, "error": None, "ended_jobs": 0}
    assert local_job == cloud_job == held, (local_job, cloud_job)
