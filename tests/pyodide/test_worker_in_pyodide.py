"""The API Worker's upload under the real Pyodide interpreter (run_worker.mjs, in Node): one job end
to end through `Default.fetch`, with real JsProxy bindings, `to_js`, JS null and awaited promises.
The bindings are JS stand-ins with D1's and R2's call shapes; D1 is a real SQLite with our migrations."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from ci_policy import require
from service_testkit import API_TOKEN, WEBHOOK_SECRET, check_log_lines
from worker_upload import PUBLIC_BASE, RUNPOD_BASE, upload_input

from service.cost import estimate_usd
from service.signing import webhook_signature

HERE = Path(__file__).resolve().parent
_DEPENDENCIES = json.loads((HERE / "package.json").read_text())["dependencies"]
# The Python Workers runtimes: Pyodide 0.26/0.27 (Python 3.12) before compatibility date 2025-09-29,
# Pyodide 0.28 (Python 3.13, which has pyodide.ffi.jsnull and hands JS null back as jsnull) from then on.
RUNTIMES = {"pyodide": (_DEPENDENCIES["pyodide"], "3.12."),
            "pyodide-py313": (_DEPENDENCIES["pyodide-py313"].removeprefix("npm:pyodide@"), "3.13.")}


def _tail(text: str, lines: int = 40) -> str:
    # Pyodide's errors quote its minified one-line runtime: keep each line short.
    return "\n".join(line[:300] for line in text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def node() -> str:
    """Node with tests/pyodide's pinned Pyodide installed (`npm ci` here on a fresh clone)."""
    node = shutil.which("node")
    require(node is not None, "node (runs Pyodide for tests/pyodide)")
    if not all((HERE / "node_modules" / package / "pyodide.mjs").is_file() for package in RUNTIMES):
        npm = shutil.which("npm")
        require(npm is not None, "npm (installs tests/pyodide's pinned Pyodide)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True,
                              check=False, timeout=600)
        assert done.returncode == 0, f"`npm ci` in {HERE} failed:\n{_tail(done.stdout + done.stderr)}"
    return node


@pytest.fixture(scope="module", params=sorted(RUNTIMES))
def run(request: pytest.FixtureRequest, node: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[dict[str, Any]]:
    upload = tmp_path_factory.mktemp("pyodide") / "upload.json"
    upload.write_text(json.dumps(upload_input()))
    done = subprocess.run([node, str(HERE / "run_worker.mjs"), str(upload), request.param], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, f"run_worker.mjs failed:\n{_tail(done.stderr)}"
    summary = json.loads(done.stdout)
    summary["runtime"] = request.param
    failed = {s["name"]: _tail(s["exception"]) for s in summary["steps"] if "exception" in s}
    assert not failed, f"Default.fetch raised into the runtime: {failed}"
    yield summary


def step(summary: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in summary["steps"] if s["name"] == name]
    return found


def ops(found: dict[str, Any]) -> list[tuple[str, int]]:
    return [(call["op"], len(call["statements"])) for call in found["d1"]]


def test_the_upload_runs_on_the_pinned_pyodide_and_its_python(run):
    version, python = RUNTIMES[run["runtime"]]
    assert run["pyodide"] == version and run["python"].startswith(python)
    assert run["stderr"] == []
    assert step(run, "health")["status"] == 200


def test_creating_a_job_submits_it_to_runpod_with_the_signed_webhook(run):
    created = step(run, "create")
    assert created["status"] == 202, created.get("json")
    job_id = created["json"]["job_id"]
    assert created["json"]["status"] == "queued" and job_id == run["job_id"]
    submitted = run["runpod_calls"][0]
    assert submitted["url"] == RUNPOD_BASE + "/run" and submitted["method"] == "POST"
    assert submitted["initType"] == "Object" and submitted["signal"]  # to_js'd init, with AbortSignal.timeout
    assert submitted["headers"]["authorization"] == "Bearer " + upload_input()["env"]["RUNPOD_API_KEY"]
    body = json.loads(submitted["body"])
    assert body["webhook"] == (f"{PUBLIC_BASE}/api/runpod/webhook?job={job_id}"
                               f"&sig={webhook_signature(WEBHOOK_SECRET, job_id)}")
    assert body["input"]["job_id"] == job_id and body["input"]["inputs"]["prompt"] == "a lighthouse at dusk"
    # The insert binds NULLs (no RunPod id yet, no image tag): they reached D1 as JS null.
    [insert, record] = created["d1"]
    assert insert["op"] == "run" and None in insert["statements"][0]["params"]
    assert record["op"] == "run" and record["statements"][0]["params"][0] == "rp-1-pyodide"


def test_the_completed_webhook_is_one_d1_batch_and_a_replay_changes_nothing(run):
    hook = step(run, "webhook")
    assert hook["status"] == 200 and hook["json"] == {"applied": True, "reason": "applied", "status": "completed"}
    # read, then the transition as one transaction: the job, the delivery, the day's spend, the metrics row
    assert ops(hook) == [("all", 1), ("batch", 4)]
    assert hook["r2"] == [{"op": "head", "key": run["result_key"]}]  # the result was checked in R2
    again = step(run, "webhook_again")
    assert again["json"] == {"applied": False, "reason": "duplicate", "status": "completed"}
    assert ops(again) == [("all", 1)]
    [job] = [j for j in run["tables"]["jobs"] if j["id"] == run["job_id"]]
    assert job["status"] == "completed" and job["version"] == 1 and job["error"] is None
    assert [d["runpod_status"] for d in run["tables"]["webhook_deliveries"] if d["job_id"] == run["job_id"]] == [
        "COMPLETED"]
    assert [m["status"] for m in run["tables"]["job_metrics"] if m["job_id"] == run["job_id"]] == ["completed"]


def test_a_webhook_that_overtakes_the_run_answer_adopts_the_runpod_id(run):
    # The job's runpod_job_id is still NULL when the webhook is applied: on Pyodide 0.28 D1 hands
    # that NULL back as jsnull, which must read as None (else: runpod_id_mismatch, nothing applied).
    created = step(run, "create_overtaken")
    assert created["status"] == 202, created.get("json")
    hook = step(run, "webhook_overtaking")
    assert hook["json"] == {"applied": True, "reason": "applied", "status": "failed"}
    [job] = [j for j in run["tables"]["jobs"] if j["id"] == created["json"]["job_id"]]
    [submitted] = [c for c in run["runpod_calls"] if created["json"]["job_id"] in c["body"]]
    assert job["status"] == "failed" and job["runpod_job_id"] == f"rp-{run['runpod_calls'].index(submitted) + 1}-pyodide"


def test_status_and_metrics_report_the_job(run):
    status = step(run, "status")
    assert status["status"] == 200 and status["json"]["status"] == "completed"
    assert status["json"]["error"] is None
    assert status["json"]["cost_estimate_usd"] == estimate_usd(2500, "NVIDIA L4", 2, 0.0005)
    [result] = status["json"]["results"]
    assert result["key"] == run["result_key"] and result["url"].startswith(f"{PUBLIC_BASE}/api/result/")
    metrics = step(run, "metrics")
    assert metrics["status"] == 200, metrics.get("json")
    overall = metrics["json"]["overall"]
    assert overall["count"] == 1 and overall["completed"] == 1 and overall["run_ms"]["p50"] == 2500
    # the report's three queries, today's spend and the clients' spend today: one D1 round trip
    assert ops(metrics) == [("batch", 5)]


def test_the_result_streams_from_r2_with_a_bearer_or_a_signed_url(run):
    image = base64.b64decode(run["result_base64"])
    for name in ("result", "result_signed"):
        got = step(run, name)
        assert got["status"] == 200, (name, got.get("json"))
        assert "body_error" not in got and base64.b64decode(got["body_base64"]) == image
        assert got["headers"]["content-type"] == "image/png" and got["headers"]["content-length"] == str(len(image))
    missing = step(run, "result_missing")
    assert missing["status"] == 404 and missing["json"]["error"]["code"] == "not_found"


def test_results_carry_r2s_etag_quoted_its_upload_time_and_an_inline_filename(run):
    image = base64.b64decode(run["result_base64"])
    etag = f'"{hashlib.md5(image).hexdigest()}"'  # what the R2 stand-in, like R2, reports as httpEtag
    modified = formatdate(run["result_uploaded_ms"] // 1000, usegmt=True)
    for name in ("result", "result_signed", "result_head"):
        headers = step(run, name)["headers"]
        assert headers["etag"] == etag and headers["last-modified"] == modified, name
        assert headers["content-disposition"] == 'inline; filename="0.png"', name
        assert headers["cache-control"] == "private, max-age=300", name


def test_a_matching_if_none_match_is_a_304_from_r2_head_without_reading_the_body(run):
    result = step(run, "result")["headers"]
    for name in ("result_current", "result_current_weak_in_list", "result_current_any", "result_current_head",
                 "result_current_signed"):
        got = step(run, name)
        assert (got["status"], got["body_base64"]) == (304, ""), (name, got.get("json"))
        assert {h: got["headers"][h] for h in ("etag", "last-modified", "cache-control")} == {
            h: result[h] for h in ("etag", "last-modified", "cache-control")}, name
        assert "content-type" not in got["headers"], name
        assert got["r2"] == [{"op": "head", "key": run["result_key"]}], name  # never R2's get
    stale = step(run, "result_stale")
    assert stale["status"] == 200 and base64.b64decode(stale["body_base64"]) == base64.b64decode(run["result_base64"])
    assert stale["headers"]["etag"] == result["etag"]


def test_revalidation_needs_auth_first_and_a_range_gets_the_whole_image(run):
    no_auth = step(run, "result_current_no_auth")
    assert no_auth["status"] == 401 and no_auth["r2"] == []  # a 304 would confirm the object exists
    bad = step(run, "result_current_bad_signature")
    assert bad["status"] == 403 and bad["r2"] == []
    ranged = step(run, "result_range")
    assert ranged["status"] == 200 and ranged["body_base64"] == run["result_base64"]
    assert "content-range" not in ranged["headers"]


def test_r2_rejecting_is_a_503_retry_later_not_an_internal_error(run):
    # R2's promise rejects (a JS Error): Pyodide raises JsException, which the store port reports as unavailable.
    down = step(run, "result_r2_down")
    assert down["status"] == 503 and down["json"]["error"]["code"] == "store_unavailable", down.get("json")
    assert "10001" in down["json"]["error"]["message"]
    assert down["r2"] == [{"op": "get", "key": run["result_key"]}]


def test_r2_dropping_a_result_before_its_first_byte_is_a_503_retry_later_as_the_local_server_answers(run):
    # The local store reads an object's first chunk before answering (service/s3_store.py): so does the Worker.
    broke = step(run, "result_r2_broke_before_first_byte")
    assert broke["status"] == 503 and broke["json"]["error"]["code"] == "store_unavailable", broke.get("json")
    assert f"{run['result_key']} broke off after 0 bytes" in broke["json"]["error"]["message"]
    assert broke["headers"]["retry-after"] == "5" and "body_error" not in broke
    [line] = [json.loads(printed) for printed in broke["printed"]]
    assert (line["event"], line["level"], line["http"]["status"]) == ("result.refused", "error", 503)


def test_a_result_r2_cuts_after_its_200_is_a_cut_response_and_one_error_line_names_it(run):
    """The status and Content-Length are out: the client must see the body end short (never a complete-looking
    download), and the Worker logs the cut as the local server does (result.refused, naming the job)."""
    image = base64.b64decode(run["result_base64"])
    cut = step(run, "result_r2_cut")
    assert cut["status"] == 200 and cut["headers"]["content-length"] == str(len(image))
    assert cut["body_error"], "the client read a whole body from a download R2 cut"
    lines = [json.loads(printed) for printed in cut["printed"]]
    [refused] = [line for line in lines if line["level"] == "error"]
    assert (refused["event"], refused["reason"], refused["job_id"]) == ("result.refused", "store_unavailable",
                                                                         run["job_id"])
    assert f"{run['result_key']} broke off after 8 bytes" in refused["message"]
    assert refused["http"] == {"method": "GET", "path": f"/api/result/{run['result_key']}", "status": 200}


def test_a_client_that_goes_away_mid_download_stops_the_r2_read_and_logs_no_error(run):
    gone = step(run, "result_client_gone")
    assert gone["status"] == 200 and base64.b64decode(gone["body_base64"]) == base64.b64decode(run["result_base64"])[:4]
    assert gone["r2_cancelled"] == run["result_key"]
    assert [json.loads(printed)["level"] for printed in gone["printed"]] == ["info"]


def test_a_recovery_reads_the_outcome_stored_in_r2_and_one_r2_drops_mid_body_is_a_503_retry_later(run):
    """RunPod forgot the job: the recovery applies the outcome its worker stored, read from R2's ReadableStream by
    the R2 adapter. While R2 drops that stream mid-body, the recovery is refused 503 and changes nothing."""
    keyed = step(run, "create_keyed")["json"]["job_id"]
    outcome = f"results/{keyed}/outcome.json"
    broke = step(run, "recover_r2_broke_off")
    assert broke["status"] == 503 and broke["json"]["error"]["code"] == "store_unavailable", broke.get("json")
    assert f"{outcome} broke off" in broke["json"]["error"]["message"]
    assert [c["op"] for c in broke["d1"]] == ["all"] and broke["r2"] == [{"op": "get", "key": outcome}]
    recovered = step(run, "recover_from_r2")
    assert recovered["status"] == 200 and recovered["json"] == {
        "applied": True, "reason": "applied", "status": "completed", "runpod_status": None,
        "recovered_from": "result_store"}, recovered.get("json")
    [job] = [j for j in run["tables"]["jobs"] if j["id"] == keyed]
    assert job["status"] == "completed" and job["version"] == 1
    assert [d["source"] for d in run["tables"]["webhook_deliveries"] if d["job_id"] == keyed] == ["recover"]


def test_head_answers_as_get_would_from_r2_head_without_a_body(run):
    image = base64.b64decode(run["result_base64"])
    head = step(run, "result_head")
    assert head["status"] == 200 and head["body_base64"] == ""
    assert head["headers"]["content-type"] == "image/png" and head["headers"]["content-length"] == str(len(image))
    assert head["r2"] == [{"op": "head", "key": run["result_key"]}]  # R2's head: the object body is never read
    health = step(run, "health_head")
    assert health["status"] == 200 and health["body_base64"] == ""
    assert health["headers"]["content-length"] == str(len(base64.b64decode(step(run, "health")["body_base64"])))


def test_refusals_are_json_errors(run):
    bad = step(run, "bad_signature")
    assert bad["status"] == 401 and bad["headers"]["content-type"] == "application/json"
    assert bad["json"]["error"]["code"] == "bad_signature" and ops(bad) == []
    for name in ("oversized", "oversized_undeclared", "oversized_chunked"):
        big = step(run, name)
        assert big["status"] == 413 and big["json"]["error"]["code"] == "body_too_large", name
        assert ops(big) == []
    # The 8 MiB chunked upload was read only a little past the 64 KiB limit (the isolate has 128 MB).
    assert step(run, "oversized_chunked")["pulled"] < 1024 * 1024
    runs = [c for c in run["runpod_calls"] if c["url"] == RUNPOD_BASE + "/run"]
    assert len(runs) == 3  # the three jobs created; nothing refused reached RunPod


def test_every_answer_but_the_download_r2_cut_reads_to_its_end(run):
    assert [s["name"] for s in run["steps"] if "body_error" in s] == ["result_r2_cut"]


def test_every_line_the_worker_printed_is_one_goldgate_log_line_per_request(run, log_lines):
    # One line per request (create_overtaken's window also spans the webhook that overtook it), and the line of
    # the download R2 cut after its request line.
    alone = [s for s in run["steps"] if s["name"] not in ("create_overtaken", "result_r2_cut")]
    assert all(len(s["printed"]) == 1 for s in alone), [s["printed"] for s in alone]
    assert len(step(run, "result_r2_cut")["printed"]) == 2
    assert len(run["printed"]) == len(run["steps"]) + 1
    check_log_lines(run["printed"], extra_forbidden=(API_TOKEN,))
    log_lines.extend(run["printed"])  # and again by the kit's fixture at teardown
    errors = [s["name"] for s in run["steps"] if any(json.loads(line)["level"] == "error" for line in s["printed"])]
    # R2 failing: the 503s and the cut download; nothing else
    assert errors == ["result_r2_down", "result_r2_broke_before_first_byte", "result_r2_cut", "recover_r2_broke_off"]


def test_a_create_retried_with_its_idempotency_key_answers_the_same_job_over_d1(run):
    first, again = step(run, "create_keyed"), step(run, "create_keyed_again")
    assert first["status"] == again["status"] == 202 and again["json"]["job_id"] == first["json"]["job_id"]
    assert again["headers"]["idempotent-replayed"] == "true" and "idempotent-replayed" not in first["headers"]
    assert len([c for c in run["runpod_calls"] if first["json"]["job_id"] in c["body"]]) == 1
    assert len([j for j in run["tables"]["jobs"] if j["id"] == first["json"]["job_id"]]) == 1


def test_every_post_runs_under_wait_until_and_its_promise_settles_cleanly(run):
    """A POST's work runs under ctx.waitUntil, so a client that disconnects cannot cut a create between
    RunPod taking the job and its id being recorded; the runtime gets a real Promise that resolves."""
    posts = [s for s in run["steps"] if s["method"] == "POST"]
    assert run["wait_until"] == {"count": len(posts), "promises": True, "rejected": []}


def test_the_cron_trigger_prunes_a_long_finished_job_over_d1_and_logs_one_line(run):
    """`Default.scheduled` as the runtime calls it (controller, env, ctx as JS objects): the job that finished
    40 days ago goes with its delivery, the jobs the requests created stay."""
    cron = step(run, "scheduled")
    assert "exception" not in cron
    assert {op for op, _ in ops(cron)} == {"all"} and all(call["ok"] for call in cron["d1"])
    [line] = [json.loads(printed) for printed in cron["printed"]]
    assert (line["event"], line["status"]) == ("retention.pruned", "complete")
    assert line["data"]["deleted"] == {"jobs": 1, "webhook_deliveries": 1, "idempotency_keys": 0, "job_metrics": 0}
    jobs = {job["id"] for job in run["tables"]["jobs"]}
    assert "job-long-ago" not in jobs and len(jobs) == 3
    assert all(d["job_id"] != "job-long-ago" for d in run["tables"]["webhook_deliveries"])


def test_a_method_the_sdks_request_cannot_name_is_the_cores_json_405(run):
    """The runtime hands `Default.fetch` the SDK's Request, whose `.method` is `HTTPMethod[name]`: a PROPFIND, or a
    `patch` (fetch does not upper-case it), raised KeyError out of the Worker instead of the core's answer."""
    for name, method, allow in (("propfind", "PROPFIND", "GET, HEAD"), ("patch_lower_case", "patch", "POST")):
        refused = step(run, name)
        assert refused["status"] == 405, (name, refused.get("json"), refused.get("exception", "")[-300:])
        assert refused["json"]["error"] == {"code": "method_not_allowed",
                                            "message": f"{method} is not allowed here; use {allow}"}
        assert refused["headers"]["allow"] == allow and ops(refused) == []
