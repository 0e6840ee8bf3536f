"""The local R2 when a result's body file is deleted or cut by hand (a disk cleanup, a crash) while its record
stays: R2 never holds half an object, so neither does this store. The object is gone (404 NoSuchKey to GET and
HEAD, as R2 answers for a key it does not hold), its record with it, and `object_store.body_lost` says so
once (review 30: its files are kept aside under `damaged/`, out of the bucket, and a same-size edit is caught too:
test_review30_store_damaged_bodies). Before, a GET of a deleted body answered 500 (moto's traceback), a HEAD still answered 200 with the
stored size (so a job's COMPLETED check passed for an image that was gone), and a cut body was served, and put
back at the next start, as a whole object.

The moto server and its DurableBucket run in a child process (the store patches moto's backend for the
process), one per "start" of the stack: the second child is the next `goldgate up` over the same objects
dir."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from store_child_support import child_script, lost_lines, run_child

KEYS = [f"results/{i:032x}/0.png" for i in range(4)]
GONE, CUT, KEPT, OTHER = KEYS
BODY = b"\x89PNG" + bytes(8192)

_CHILD = child_script("""
    root, steps = Path(sys.argv[1]), json.loads(sys.argv[2])
    DurableBucket(root, "results", JsonLogger("orchestrator", log), result_ttl_days=7).attach()
    report = []
    for op, key, *arg in steps:
        try:
            if op == "put":
                s3.put_object(Bucket="results", Key=key, Body=b"\\x89PNG" + bytes(8192),
                              ContentType="image/png", IfNoneMatch="*")
                report.append([op, key, 200])
            elif op == "cut":  # by hand, outside the store
                Path(arg[0]).write_bytes(Path(arg[0]).read_bytes()[:100])
                report.append([op, key, None])
            elif op == "delete":
                Path(arg[0]).unlink()
                report.append([op, key, None])
            elif op == "head":
                report.append([op, key, s3.head_object(Bucket="results", Key=key)["ContentLength"]])
            elif op == "get":
                got = s3.get_object(Bucket="results", Key=key)
                report.append([op, key, len(got["Body"].read())])
            elif op == "list":
                listed = s3.list_objects_v2(Bucket="results").get("Contents", [])
                report.append([op, key, sorted(o["Key"] for o in listed)])
        except ClientError as exc:
            report.append([op, key, exc.response["Error"]["Code"]])
""")


def _start(root: Path, steps: list[list[str]]) -> dict:
    """One start of the store over `root`, the steps run against it; what each answered and the host log."""
    return run_child(_CHILD, root, json.dumps(steps))


def _files(root: Path, key: str) -> tuple[Path, Path]:
    name = hashlib.sha256(key.encode()).hexdigest()
    return root / f"{name}.bin", root / f"{name}.json"


def _restored(log: list[dict]) -> list[int]:
    return [line["data"]["objects"] for line in log if line["event"] == "object_store.restored"]


def test_a_body_deleted_or_cut_while_the_stack_runs_is_no_object_and_is_said_once(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    steps = [["put", key] for key in KEYS]
    steps += [["delete", GONE, str(_files(root, GONE)[0])], ["cut", CUT, str(_files(root, CUT)[0])]]
    steps += [[op, key] for key in (GONE, CUT) for op in ("head", "get", "get")]
    steps += [["get", KEPT], ["head", KEPT], ["list", ""], ["put", GONE], ["get", GONE]]

    answers = _start(root, steps)["report"]
    restart = _start(root, [])

    asked = {(op, key): [] for op, key, _ in answers}
    for op, key, answer in answers:
        asked[op, key].append(answer)
    for key in (GONE, CUT):
        assert asked["head", key] == ["404"], (key, asked["head", key])  # a HEAD answered the stored size
        assert asked["get", key][:2] == ["NoSuchKey", "NoSuchKey"], (key, asked["get", key])  # was 500 / cut
    assert asked["get", KEPT] == [len(BODY)] and asked["head", KEPT] == [len(BODY)]
    assert asked["list", ""] == [[KEPT, OTHER]]
    assert asked["put", GONE] == [200, 200]  # the worker's retry puts it anew
    assert asked["get", GONE][-1] == len(BODY)
    assert not _files(root, CUT)[0].exists() and not _files(root, CUT)[1].exists()  # its record went with it
    assert all(path.exists() for key in (KEPT, OTHER, GONE) for path in _files(root, key))
    # The next start puts back everything whole, and says nothing more of what was lost.
    assert lost_lines(restart["log"]) == []
    assert _restored(restart["log"]) == [3]


def test_each_lost_body_is_logged_once_with_its_key_and_sizes(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    run = _start(root, [["put", GONE], ["put", CUT],
                        ["delete", GONE, str(_files(root, GONE)[0])], ["cut", CUT, str(_files(root, CUT)[0])],
                        ["get", GONE], ["get", GONE], ["head", GONE],
                        ["get", CUT], ["head", CUT], ["get", CUT]])

    lines = lost_lines(run["log"])
    said = [(line["data"]["key"], line["data"]["stored_bytes"], line["data"]["found_bytes"]) for line in lines]
    assert said == [(GONE, len(BODY), None), (CUT, len(BODY), 100)]
    for line in lines:
        assert line["level"] == "warning" and line["component"] == "orchestrator"
        assert line["data"]["key"] in line["message"] and "Run that job again" in line["message"]


def test_a_start_drops_a_body_deleted_or_cut_while_the_stack_was_down_and_puts_back_the_rest(
        tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    _start(root, [["put", key] for key in KEYS])
    _files(root, GONE)[0].unlink()
    _files(root, CUT)[0].write_bytes(BODY[:100])  # the size a crash left: the record says what was stored

    start = _start(root, [[op, key] for key in KEYS for op in ("head", "get")])

    answers = {(op, key): answer for op, key, answer in start["report"]}
    assert answers["get", GONE] == "NoSuchKey" and answers["head", GONE] == "404"
    assert answers["get", CUT] == "NoSuchKey" and answers["head", CUT] == "404"  # was put back, 100 bytes
    assert answers["get", KEPT] == answers["get", OTHER] == len(BODY)
    lines = lost_lines(start["log"])
    said = sorted((line["data"]["key"], line["data"]["found_bytes"]) for line in lines)
    assert said == [(GONE, None), (CUT, 100)]
    assert _restored(start["log"]) == [2]
    assert not any(path.exists() for key in (GONE, CUT) for path in _files(root, key))
    assert lost_lines(_start(root, [])["log"]) == []  # said once: the start after finds nothing more to say


def test_a_body_cut_under_a_read_is_not_read_as_the_object(tmp_path: Path) -> None:
    from goldgate.local.object_store import BodyLost, SavedBody

    path = tmp_path / "body.bin"
    path.write_bytes(BODY)
    saved = SavedBody(path, len(BODY))
    assert saved.read() == BODY
    path.write_bytes(BODY[:100])
    saved.seek(0)
    with pytest.raises(BodyLost, match="has 100 bytes, but the object was stored with 8196"):
        saved.read()
