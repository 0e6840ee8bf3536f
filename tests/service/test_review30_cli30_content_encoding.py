"""A request body sent with a Content-Encoding (a client library that gzips its JSON, as fetch wrappers and HTTP
clients can be set to) was read as if it were not coded: a gzipped create was refused 400 `invalid_json` "request
body is not UTF-8 text", which has its sender look for an encoding fault in its JSON, and a plain body labelled
gzip was taken as JSON. The service decodes no content coding, so such a body is refused 415
`unsupported_content_encoding` with `Accept-Encoding: identity` (RFC 9110 15.5.16, 12.5.3), naming the coding and
saying to send the JSON uncompressed, on every route that reads a body, before anything is written or RunPod is
called; `identity` (no coding) is taken. The answer is the one docs/openapi.json lists for each of those routes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from service_testkit import WEBHOOK_SECRET

from service.signing import webhook_signature

ROOT = Path(__file__).resolve().parents[2]
DOC = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
URI = "urn:goldgate:openapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC, default_specification=DRAFT202012))
CREATE = {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a lighthouse"}}


def _deref(node: dict) -> tuple[dict, str | None]:
    """(node with its document-local $ref followed, the JSON pointer it ended at, or None if it had none)."""
    pointer = None
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = DOC
        for part in pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def _documented(path: str, status: int, body: dict, headers: dict[str, str]) -> None:
    """The answer is one docs/openapi.json lists for POST `path`: its status, its required headers, its body."""
    listed = DOC["paths"][path]["post"]["responses"].get(str(status))
    assert listed is not None, f"POST {path}: {status} is not in docs/openapi.json"
    response, pointer = _deref(listed)
    for name, header in response.get("headers", {}).items():
        header, _ = _deref(header)
        if header.get("required"):
            assert name.lower() in headers, f"POST {path} {status}: no {name} header: {headers}"
            errors = list(jsonschema.Draft202012Validator(header["schema"]).iter_errors(headers[name.lower()]))
            assert not errors, f"POST {path} {status}: {name}: {errors[0].message}"
    pointer = pointer or "/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/post/responses/{status}"
    schema = {"$ref": URI + "#" + pointer + "/content/application~1json/schema"}
    errors = list(jsonschema.Draft202012Validator(schema, registry=REGISTRY).iter_errors(body))
    assert not errors, f"POST {path} {status}: {body}: {errors[0].message}"


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "br", "gzip, identity"])
def test_a_create_with_a_coded_body_is_a_415_that_says_to_send_it_uncompressed_and_makes_no_job(svc, coding):
    body = json.dumps(CREATE).encode()
    for raw in (gzip.compress(body), body):  # the coded body, and a plain one labelled coded: neither is read
        status, answer, headers = svc.call("POST", "/api/queue/create", raw=raw,
                                           headers={"content-encoding": coding, "idempotency-key": "k-coded"})
        assert (status, answer["error"]["code"]) == (415, "unsupported_content_encoding"), answer
        assert headers["accept-encoding"] == "identity"
        assert coding in answer["error"]["message"] and "uncompressed" in answer["error"]["message"]
        _documented("/api/queue/create", status, answer, headers)
    assert svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"] == 0 and svc.fake.runs == []
    # the key was never claimed: the same key with the body sent plainly makes the job
    status, answer, headers = svc.call("POST", "/api/queue/create", raw=body, headers={"idempotency-key": "k-coded"})
    assert status == 202 and "idempotent-replayed" not in headers, answer


def test_identity_is_no_coding_and_is_taken(svc):
    gzipped = gzip.compress(json.dumps(CREATE).encode())
    assert svc.call("POST", "/api/queue/create", raw=gzipped, headers={"content-encoding": "gzip"})[0] == 415
    status, answer, _ = svc.call("POST", "/api/queue/create", raw=json.dumps(CREATE).encode(),
                                 headers={"content-encoding": " Identity "})
    assert status == 202, answer


def test_cancel_recover_and_the_webhook_refuse_a_coded_body_alike_and_change_nothing(svc):
    job_id = svc.create()["job_id"]
    rid = svc.runpod_id(job_id)
    coded = {"content-encoding": "gzip"}
    cases = [
        ("/api/cancel/{job_id}", svc.call("POST", f"/api/cancel/{job_id}", raw=gzip.compress(b"{}"), headers=coded)),
        ("/api/admin/recover/{job_id}", svc.call("POST", f"/api/admin/recover/{job_id}",
                                                 raw=gzip.compress(json.dumps({"runpod_job_id": rid}).encode()),
                                                 headers=coded)),
    ]
    delivery = gzip.compress(json.dumps({"id": rid, "status": "CANCELLED"}).encode())
    cases.append(("/api/runpod/webhook", svc.call("POST", "/api/runpod/webhook", raw=delivery, token=None,
                                                  query=f"job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                                                  headers=coded)))
    for path, (status, answer, headers) in cases:
        assert (status, answer["error"]["code"], headers.get("accept-encoding")) == (
            415, "unsupported_content_encoding", "identity"), (path, answer)
        _documented(path, status, answer, headers)
    assert svc.job(job_id)["status"] == "queued"
