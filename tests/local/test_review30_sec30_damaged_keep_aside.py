"""Review 30 (sec30): the local store's keep-aside of a damaged result (`damaged/`) when it cannot finish, or while
the same key is uploaded again.

1. A full disk (here: a file-size limit, which fails the write as ENOSPC does) while the evidence record is written:
   the body was already moved into damaged/, the record was left, the evidence file was left cut short (no JSON),
   and `object_store.body_lost` said the files "are left where they are". The next start then found the body gone
   and reported it "missing (deleted outside goldgate: a disk cleanup ...)", a second evidence file saying so: the
   operator is told the opposite of what happened, twice.
2. A PUT of the same key answered 200 between the read that found the damage and the keep-aside: the keep-aside moved
   the NEW body into damaged/ as the damaged one and deleted its record, so the object the uploader was told is stored
   answers 404 at once and after every start, and nothing says so.

As in test_review30_store_damaged_bodies, the moto server and its DurableBucket run in a child process (the store
patches moto's backend for the process)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from store_child_support import body_file, child_script, lost_lines, run_child

KEY = "results/" + "5" * 32 + "/0.png"
BODY = b"\x89PNG" + bytes(range(256)) * 32
SHA = hashlib.sha256(BODY).hexdigest()

_CHILD = child_script("""
    import resource, signal, threading
    root, body, steps = Path(sys.argv[1]), bytes.fromhex(sys.argv[2]), json.loads(sys.argv[3])
    # Holds a keep-aside at its start until the step "put_during_keep_aside" has uploaded the key again.
    entered, release = threading.Event(), threading.Event()
    if any(step[0] == "put_during_keep_aside" for step in steps):
        original = DurableBucket._keep_aside

        def held(self, *args, **kwargs):
            entered.set()
            release.wait(60)
            return original(self, *args, **kwargs)

        DurableBucket._keep_aside = held
    DurableBucket(root, "results", JsonLogger("orchestrator", log), result_ttl_days=7).attach()
    report = []

    def get(c):
        try:
            return hashlib.sha256(c.get_object(Bucket="results", Key=steps_key)["Body"].read()).hexdigest()
        except ClientError as exc:
            return exc.response["Error"]["Code"]

    for op, steps_key, *arg in steps:
        if op == "write":  # by hand, outside the store
            Path(arg[0]).write_bytes(bytes.fromhex(arg[1]))
        elif op == "disk_full_after":  # every file write past this many bytes fails (EFBIG, as ENOSPC would)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg[0]), resource.RLIM_INFINITY))
        elif op == "put":
            s3.put_object(Bucket="results", Key=steps_key, Body=body, ContentType="image/png", IfNoneMatch="*")
            report.append([op, 200])
        elif op == "get":
            report.append([op, get(s3)])
        elif op == "put_during_keep_aside":
            first = []
            reader = threading.Thread(target=lambda: first.append(get(client())))
            reader.start()
            entered.wait(60)
            try:
                s3.put_object(Bucket="results", Key=steps_key, Body=body, ContentType="image/png", IfNoneMatch="*")
                report.append(["put", 200])
            except ClientError as exc:
                report.append(["put", exc.response["Error"]["Code"]])
            release.set()
            reader.join(60)
            report.append(["get", first[0] if first else "no answer"])
""")


def _start(root: Path, steps: list[list[str]]) -> dict:
    return run_child(_CHILD, root, BODY.hex(), json.dumps(steps))


def test_a_keep_aside_the_full_disk_stops_tells_the_truth_and_the_next_start_names_the_damage(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    _start(root, [["put", KEY]])
    flipped = bytearray(BODY)
    flipped[100] ^= 0xFF

    # The body fits under the limit (written first); the evidence record (some 600 bytes) does not.
    run = _start(root, [["write", KEY, str(body_file(root, KEY)), bytes(flipped).hex()],
                        ["disk_full_after", KEY, "300"], ["get", KEY]])
    assert run["report"] == [["get", "NoSuchKey"]], run["report"]
    [line] = lost_lines(run["log"])
    if line["data"]["kept"] is None:
        # What the line says happened must be what is on disk: the body is where it was, for the next start to find.
        assert "left where they are" in line["message"], line["message"]
        assert body_file(root, KEY).is_file() and body_file(root, KEY).read_bytes() == bytes(flipped), (
            f"the line says the files are left where they are, but the body is gone from {body_file(root, KEY)} "
            f"(it is in {sorted(p.name for p in (root / 'damaged').glob('*'))})")
    for evidence in (root / "damaged").glob("*.json"):
        json.loads(evidence.read_text())  # never an evidence file cut short by the full disk

    again = _start(root, [["get", KEY]])
    assert again["report"] == [["get", "NoSuchKey"]]
    said = [(line["data"]["damage"], line["message"]) for line in lost_lines(again["log"])]
    # Before: [("missing", "... is missing (deleted outside goldgate: a disk cleanup, a copy without it?) ...")]
    assert all(damage != "missing" for damage, _ in said), said


def test_a_result_uploaded_again_while_its_damaged_copy_is_kept_aside_stays_stored(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    _start(root, [["put", KEY]])
    flipped = bytearray(BODY)
    flipped[100] ^= 0xFF

    run = _start(root, [["write", KEY, str(body_file(root, KEY)), bytes(flipped).hex()], ["put_during_keep_aside", KEY],
                        ["get", KEY]])
    put, first_get, later_get = run["report"]
    assert first_get == ["get", "NoSuchKey"], run["report"]   # the damaged copy is never served
    if put == ["put", 200]:
        # The uploader was told its object is stored: it is served, and kept across a start.
        assert later_get == ["get", SHA], run["report"]   # before: NoSuchKey, its body moved into damaged/
        # The line says what happened: the damaged object answered 404 and left, the new upload stands.
        [line] = lost_lines(run["log"])
        assert line["data"]["kept"] is None and "uploaded again" in line["message"], line["message"]
        assert _start(root, [["get", KEY]])["report"] == [["get", SHA]]
