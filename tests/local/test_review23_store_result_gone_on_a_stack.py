"""A real local stack whose result body files an operator deletes or cuts by hand (a disk cleanup, a crash)
while their records stay: every path answers truthfully and nothing else is lost.

- A job's COMPLETED check (here through `goldgate recover`, which applies RunPod's outcome with the webhook's
  code) finds an image whose body went missing, so the job fails naming it. It completed: the store's HEAD
  still answered the stored size.
- The result URL of a completed job whose body was cut answers 404 `result_missing` naming the key, not a 5xx
  or a short image, and the stack host says `object_store.body_lost` once.
- The stack restarts, serves its other results, and keeps every job row.

The webhooks are dropped (`drop_all_deliveries_rate`) so each job settles when the test recovers it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import jsonschema
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file

from goldgate.cli import main
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store
from goldgate.local.platform import LocalPlatform
from goldgate.local.state import StackDir
from goldgate.runpod.jobs import DataPlaneClient

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")

STACK = "staging"
LOG_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs/logging-schema-v1.json").read_text()),
    format_checker=jsonschema.FormatChecker())


def _body(home: Path, platform: LocalPlatform, key: str) -> Path:
    saved = StackDir(home, STACK).objects_dir / platform.spec(STACK).storage.bucket
    return saved / f"{hashlib.sha256(key.encode()).hexdigest()}.bin"


def _image_keys(home: Path, platform: LocalPlatform, job_id: str) -> list[str]:
    """The result images the job's worker stored, as the store's records name them."""
    saved = StackDir(home, STACK).objects_dir / platform.spec(STACK).storage.bucket
    keys = [json.loads(path.read_text())["key"] for path in saved.glob("*.json")]
    return sorted(k for k in keys if k.startswith(f"results/{job_id}/") and not k.endswith("/outcome.json"))


def _host_events(home: Path, event: str) -> list[dict]:
    log = StackDir(home, STACK).logs_dir / "stackhost.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == event]


def test_a_result_body_gone_by_hand_fails_its_completion_answers_result_missing_and_the_stack_restarts(
        home: Path, capsys) -> None:
    stacks = stacks_file(home, endpoint={"workers_max": 1},
                         staging={"webhook_retry_delay_s": 0.2, "faults": {"drop_all_deliveries_rate": 1.0}})
    platform = LocalPlatform(home, stacks)
    StackDir(home, STACK).pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(STACK, timeout_s=90)
    try:
        status = platform.status(STACK)
        headers = {"Authorization": f"Bearer {platform.api_token(STACK)}"}
        api = httpx.Client(base_url=status.api_url, timeout=30, headers=headers)
        runpod = DataPlaneClient(platform.runpod_api_key(STACK), status.endpoint_id,
                                 base_url=status.runpod_endpoint_base)
        jobs = []
        for prompt in ("a lighthouse", "a harbour", "a cliff"):
            created = api.post("/api/queue/create",
                               json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}})
            assert created.status_code == 202, created.text
            jobs.append(created.json()["job_id"])
        for job_id in jobs:
            rid = api.get(f"/api/status/{job_id}").json()["runpod_job_id"]
            assert wait_until(lambda rid=rid: runpod.status(rid).status == "COMPLETED", 120), job_id
        cut_job, gone_job, whole_job = jobs
        assert main(["recover", cut_job, "--stack", STACK, "--json", "--home", str(home)]) == 0
        assert main(["recover", whole_job, "--stack", STACK, "--json", "--home", str(home)]) == 0
        [gone_key] = _image_keys(home, platform, gone_job)
        _body(home, platform, gone_key).unlink()  # before its job's COMPLETED outcome is checked

        main(["recover", gone_job, "--stack", STACK, "--json", "--home", str(home)])
        capsys.readouterr()
        view = api.get(f"/api/status/{gone_job}").json()
        assert view["status"] == "failed", view
        assert gone_key in view["error"] and "missing from the result store" in view["error"], view["error"]

        cut = api.get(f"/api/status/{cut_job}").json()
        assert cut["status"] == "completed", cut
        [result] = cut["results"]
        body = _body(home, platform, result["key"])
        body.write_bytes(body.read_bytes()[:100])  # what a crash mid-copy leaves
        for _ in range(2):
            answer = httpx.get(result["url"], timeout=30)  # the signed URL a client holds
            assert answer.status_code == 404, (answer.status_code, answer.content[:200])
            error = answer.json()["error"]
            assert error["code"] == "result_missing" and result["key"] in error["message"], error
        lost = _host_events(home, "object_store.body_lost")
        assert sorted(line["data"]["key"] for line in lost) == sorted([gone_key, result["key"]]), lost
        for line in lost:
            LOG_SCHEMA.validate(line)

        platform.down(STACK)
        platform.up(STACK, timeout_s=90)  # one damaged result does not keep the stack down

        status = platform.status(STACK)
        api.close()
        api = httpx.Client(base_url=status.api_url, timeout=30, headers=headers)
        whole = api.get(f"/api/status/{whole_job}").json()
        assert whole["status"] == "completed" and whole["results"], whole
        for item in whole["results"]:
            image = httpx.get(item["url"], timeout=30)
            assert image.status_code == 200 and len(image.content) == item["bytes"]
        assert api.get(f"/api/status/{cut_job}").json()["status"] == "completed"  # its row is kept
        again = api.get(f"/api/result/{result['key']}")
        assert again.status_code == 404 and again.json()["error"]["code"] == "result_missing", again.text
        assert len(_host_events(home, "object_store.body_lost")) == 2  # said once, not again at the restart
        runpod.close()
        api.close()
    finally:
        platform.down(STACK)
