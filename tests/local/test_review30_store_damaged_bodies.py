"""Review 30 (store): the local R2 stand-in when a stored result's body file is damaged by hand. An on-call engineer
wrote 20000 random bytes over a stored result: the store reported it "deleted or cut" and deleted the file and its
record, the evidence an operator would inspect. And a result with one byte flipped (same size) was served 200 with
another sha256: the store checked the size only. R2 never serves other bytes than it stored; the store now keeps
each body's sha256 in its record and a GET checks the very bytes it answers: other bytes are refused (404
NoSuchKey, as for a key the bucket does not hold; GET /api/result 404 result_missing), the damaged body and what was
stored and found are kept aside under `damaged/`, and `object_store.body_lost` says what was found: missing, cut
short, appended to, or other bytes.

As in test_review23_store_body_lost, the moto server and its DurableBucket run in a child process per "start" of the
stack (the store patches moto's backend for the process); a real stack's API answer is checked last."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from ci_policy import needs
from processes import wait_until
from stackfiles import stacks_file
from store_child_support import body_file, child_script, lost_lines, run_child

KEYS = [f"results/{i:032x}/0.png" for i in range(4)]
BODY = b"\x89PNG" + bytes(range(256)) * 32
SHA = hashlib.sha256(BODY).hexdigest()

_CHILD = child_script("""
    root, body, steps = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), json.loads(sys.argv[3])
    DurableBucket(root, "results", JsonLogger("orchestrator", log), result_ttl_days=7).attach()
    report = []
    for op, key, *arg in steps:
        try:
            if op == "unlink":  # by hand, outside the store, while it runs
                Path(arg[0]).unlink()
                continue
            if op == "write":
                Path(arg[0]).write_bytes(bytes.fromhex(arg[1]))
                continue
            if op == "put":
                s3.put_object(Bucket="results", Key=key, Body=body, ContentType="image/png", IfNoneMatch="*")
                report.append([op, key, 200])
            elif op == "head":
                report.append([op, key, s3.head_object(Bucket="results", Key=key)["ContentLength"]])
            elif op == "get":
                got = s3.get_object(Bucket="results", Key=key)["Body"].read()
                report.append([op, key, hashlib.sha256(got).hexdigest()])
            elif op == "list":
                listed = s3.list_objects_v2(Bucket="results").get("Contents", [])
                report.append([op, key, sorted(o["Key"] for o in listed)])
        except ClientError as exc:
            report.append([op, key, exc.response["Error"]["Code"]])
""")


def _start(root: Path, steps: list[list[str]]) -> dict:
    """One start of the store over `root`, the steps run against it; what each answered and the host log."""
    return run_child(_CHILD, root, BODY.hex(), json.dumps(steps))


def _flip(path: Path, at: int = 100) -> bytes:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def _answers(report: list[list]) -> dict[tuple[str, str], list]:
    asked: dict[tuple[str, str], list] = {}
    for op, key, answer in report:
        asked.setdefault((op, key), []).append(answer)
    return asked


def _kept(root: Path) -> dict[str, tuple[dict, bytes | None]]:
    """What the store kept aside, by key: the record of what was stored and found, and the body found."""
    kept = {}
    for found in sorted((root / "damaged").glob("*.json")):
        record = json.loads(found.read_text())
        body = found.with_suffix(".bin")
        kept[record["key"]] = (record, body.read_bytes() if body.exists() else None)
    return kept


def test_a_byte_flipped_at_the_same_size_is_never_served_and_the_evidence_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    flipped, whole = KEYS[0], KEYS[1]
    _start(root, [["put", flipped], ["put", whole]])
    damaged = _flip(body_file(root, flipped))

    run = _start(root, [["head", flipped], ["get", flipped], ["get", flipped], ["head", flipped],
                        ["get", whole], ["list", ""]])

    asked = _answers(run["report"])
    # The restart took the record's size as the object's (a stat); the GET checks the bytes and refuses them.
    assert asked["get", flipped] == ["NoSuchKey", "NoSuchKey"], asked  # was 200, another sha256
    assert asked["head", flipped][-1] == "404"  # once refused, no longer held
    assert asked["get", whole] == [SHA] and asked["list", ""] == [[whole]]
    [line] = lost_lines(run["log"])
    assert line["data"]["key"] == flipped and line["data"]["damage"] == "other_bytes", line
    assert line["data"]["stored_sha256"] == SHA
    assert line["data"]["found_sha256"] == hashlib.sha256(damaged).hexdigest()
    assert "holds other bytes than stored" in line["message"], line["message"]
    record, body = _kept(root)[flipped]
    assert body == damaged and record["stored_sha256"] == SHA and record["damage"] == "other_bytes"
    assert record["record"]["key"] == flipped and record["record"]["bytes"] == len(BODY)
    assert not body_file(root, flipped).exists()  # out of the bucket's files: the next start does not put it back
    again = _start(root, [["get", flipped], ["get", whole]])
    assert _answers(again["report"]) == {("get", flipped): ["NoSuchKey"], ("get", whole): [SHA]}
    assert lost_lines(again["log"]) == []


def test_a_body_written_over_with_more_bytes_is_said_to_be_other_bytes_not_deleted_or_cut(tmp_path: Path) -> None:
    """The on-call engineer's case: the store said "deleted or cut" and deleted the file it found."""
    root = tmp_path / "objects" / "results"
    key = KEYS[0]
    random = os.urandom(20000)
    run = _start(root, [["put", key], ["write", key, str(body_file(root, key)), random.hex()], ["get", key]])
    assert _answers(run["report"])["get", key] == ["NoSuchKey"]
    [line] = lost_lines(run["log"])
    assert line["data"]["damage"] == "other_bytes" and line["data"]["found_bytes"] == 20000, line
    assert "deleted or cut" not in line["message"], line["message"]
    assert "20000 bytes with sha256 " + hashlib.sha256(random).hexdigest() in line["message"]
    record, body = _kept(root)[key]
    assert record["stored_sha256"] == SHA and record["found_sha256"] == hashlib.sha256(random).hexdigest()
    assert body == random, "the damaged body an operator would inspect was deleted"
    assert line["data"]["kept"] == str(next((root / "damaged").glob("*.bin")))


@pytest.mark.parametrize("damage", ["missing", "cut_short", "appended", "other_bytes"])
def test_while_the_stack_runs_the_line_says_what_was_found(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "objects" / "results"
    key = KEYS[2]
    _start(root, [["put", key]])
    body = body_file(root, key)
    found = {"missing": None, "cut_short": BODY[:100], "appended": BODY + b"more",
             "other_bytes": os.urandom(len(BODY) + 1)}[damage]
    # Damaged by hand while the stack runs, after a GET served it whole
    damaging = ["unlink", key, str(body)] if found is None else ["write", key, str(body), found.hex()]
    run = _start(root, [["get", key], damaging, ["get", key], ["head", key]])
    assert _answers(run["report"]) == {("get", key): [SHA, "NoSuchKey"], ("head", key): ["404"]}, run["report"]
    [line] = lost_lines(run["log"])
    assert line["data"]["damage"] == damage, line
    assert line["data"]["found_bytes"] == (None if found is None else len(found))
    says = {"missing": "is missing", "cut_short": f"is cut short: 100 bytes where {len(BODY)} were stored",
            "appended": f"holds the {len(BODY)} bytes stored followed by 4 more",
            "other_bytes": "holds other bytes than stored"}[damage]
    assert says in line["message"], line["message"]
    record, kept = _kept(root)[key]
    assert kept == found and record["damage"] == damage


@needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")
def test_on_a_stack_a_result_with_a_byte_flipped_answers_result_missing_and_is_kept(home: Path) -> None:
    from goldgate.commands.local import WORKER_SOURCE
    from goldgate.local import image_store
    from goldgate.local.platform import LocalPlatform
    from goldgate.local.state import StackDir

    stack = "staging"
    platform = LocalPlatform(home, stacks_file(home, endpoint={"workers_max": 1}))
    StackDir(home, stack).pin(image_store.build_local_image(WORKER_SOURCE, home), reason="test")
    platform.up(stack, timeout_s=90)
    try:
        status = platform.status(stack)
        api = httpx.Client(base_url=status.api_url, timeout=30,
                           headers={"Authorization": f"Bearer {platform.api_token(stack)}"})
        created = api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "a pier"}})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        assert wait_until(lambda: api.get(f"/api/status/{job_id}").json()["status"] == "completed", 120)
        [result] = api.get(f"/api/status/{job_id}").json()["results"]
        first = httpx.get(result["url"], timeout=30)
        assert first.status_code == 200 and hashlib.sha256(first.content).hexdigest() == result["sha256"]
        root = StackDir(home, stack).objects_dir / platform.spec(stack).storage.bucket
        damaged = _flip(body_file(root, result["key"]), at=len(first.content) // 2)

        answer = httpx.get(result["url"], timeout=30)
        # Before: 200, and a body whose sha256 was not the job's
        assert answer.status_code == 404, (answer.status_code, hashlib.sha256(answer.content).hexdigest())
        assert answer.json()["error"]["code"] == "result_missing", answer.text
        assert result["key"] in answer.json()["error"]["message"]
        record, body = _kept(root)[result["key"]]
        assert body == damaged and record["stored_sha256"] == result["sha256"]
        api.close()
    finally:
        platform.down(stack)
