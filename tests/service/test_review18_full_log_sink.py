"""The service's log on a full disk. Locally its stdout is a file (the stack host's logs/service.jsonl) on the
disk that fills. The line a request logs is written after its answer is made: a write that raised there
escaped the app, and a create RunPod had already taken was answered 500, so its client's retry ran and billed
the job again; a webhook already recorded was refused, and retried. Now a line the disk refuses is lost, and
the answer stands."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from ci_policy import needs

from service import logs
from service.logs import stdout_sink

SOURCE = Path(logs.__file__).resolve().parents[1]  # the tree under test, for the child to import it from

DEV_FULL = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


@needs(DEV_FULL.exists(), "/dev/full")
def test_a_create_is_answered_202_when_its_log_line_cannot_be_written(svc, monkeypatch):
    svc.app.log.sink = stdout_sink  # the local server's sink (build_local's default)
    full = DEV_FULL.open("w")
    try:
        monkeypatch.setattr(sys, "stdout", full)
        status, body, _ = svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img",
                                                                 "inputs": {"prompt": "a lighthouse"}})
        assert status == 202, body
        assert len(svc.fake.runs) == 1
        job_id = body["job_id"]
        image = svc.put_result(job_id)
        status, body, _ = svc.deliver(job_id, svc.completed(job_id, [image]))
        assert (status, body["status"]) == (200, "completed"), body
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):  # what it still holds cannot be written either
            full.close()


_FILLS_UP = textwrap.dedent("""
    import resource, signal, sys
    from service.logs import Logger, stdout_sink

    log = Logger(stdout_sink, stack="test")
    log.info("job.created", message="before the disk filled")
    # A write past the limit fails (EFBIG), as one fails with ENOSPC on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), hard))
    for _ in range(50):  # each line is over the room left: the first goes out in part, the rest not at all
        log.info("job.created", message="x" * 500)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again
    log.info("job.submitted", message="after the disk had room again")
""")


def test_the_first_line_after_the_disk_had_room_again_is_whole(tmp_path):
    out = tmp_path / "service.jsonl"
    with out.open("w") as sink:
        print('{"placeholder": 1}', file=sink)  # the file's size, known before the child writes
    size = out.stat().st_size
    with out.open("a") as sink:
        done = subprocess.run([sys.executable, "-c", _FILLS_UP, str(size + 400)], check=False,
                              stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60, cwd=SOURCE)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    parsed = []
    for line in lines[1:]:
        try:
            parsed.append(json.loads(line)["message"])
        except ValueError:
            parsed.append("<cut>")
    assert parsed[0] == "before the disk filled", lines
    assert parsed[-1] == "after the disk had room again", "the line after the cut one was glued onto it"
    assert set(parsed[1:-1]) <= {"<cut>"} and len(parsed) <= 3, parsed
