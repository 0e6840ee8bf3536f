"""The local R2 whose directory refuses writes (a read-only results dir, a full disk): each upload is answered 500
InternalError as R2 answers a write it failed (the uploader retries; the job fails if it never takes), with no
traceback in the host's stderr log (a chaos run found 36 of them, 2,448 lines) and one `object_store.unwritable`
warning per burst, naming the path and the errno, in the host's v1 log.

The moto server and its DurableBucket run in a child (attach patches moto's backend class for the process), as
test_review18_full_object_store.py runs them. The bucket's directory is made unwritable by a regular file in the
place of its parent (ENOTDIR): the tests run as root too, whom a mode 0555 directory does not stop."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from goldgate.local import object_store

SOURCE = Path(object_store.__file__).resolve().parents[2]  # the tree under test, for the child to import

_CHILD = textwrap.dedent("""
    import json, shutil, sys
    from pathlib import Path

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto.server import ThreadedMotoServer

    from goldgate.local.object_store import DurableBucket
    from goldgate.logs import JsonLogger

    objects, log_path = Path(sys.argv[1]), Path(sys.argv[2])
    root = objects / "results"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s",
                      config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    s3.create_bucket(Bucket="results")
    with log_path.open("a") as log_file:
        DurableBucket(root, "results", JsonLogger("orchestrator", log_file), result_ttl_days=7).attach()
        report = {}

        def put(name, n):
            key = f"results/0123456789abcdef0123456789abcdef/{n}.png"
            try:
                s3.put_object(Bucket="results", Key=key, Body=b"PNG" + bytes(64), ContentType="image/png",
                              IfNoneMatch="*")
                report[name] = {"status": 200}
            except ClientError as exc:
                report[name] = {"status": exc.response["ResponseMetadata"]["HTTPStatusCode"],
                                "code": exc.response["Error"].get("Code")}
            log_file.flush()

        objects.write_text("not a directory")  # the results dir refuses every write
        for n in range(3):
            put(f"refused{n}", n)
        objects.unlink()  # writable again: the next upload is saved, and the burst is over
        put("saved", 10)
        shutil.rmtree(objects)
        objects.write_text("not a directory")  # a second burst: said again
        put("refused_again", 11)
    server.stop()
    print(json.dumps(report))
""")


def test_uploads_the_results_dir_refuses_are_a_clean_500_and_one_warning_per_burst(tmp_path: Path) -> None:
    objects, log = tmp_path / "objects", tmp_path / "stackhost.jsonl"
    done = subprocess.run([sys.executable, "-c", _CHILD, str(objects), str(log)], check=False, capture_output=True,
                          text=True, timeout=120, cwd=SOURCE)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("refused0", "refused1", "refused2", "refused_again"):
        # R2's answer to a write it failed: the uploader retries it, and says `upload ... failed: 500` at last
        assert report[name] == {"status": 500, "code": "InternalError"}, report
    assert report["saved"] == {"status": 200}, report
    # the host's stderr log (this child's stderr) gets no traceback for a refused upload
    assert "Traceback" not in done.stderr and "NotADirectoryError" not in done.stderr, done.stderr[-3000:]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    unwritable = [line for line in lines if line["event"] == "object_store.unwritable"]
    assert len(unwritable) == 2, lines  # one per burst: 3 refused uploads, then 1 after a saved one
    first = unwritable[0]
    assert first["level"] == "warning" and first["component"] == "orchestrator"
    assert first["data"]["errno"] == errno.ENOTDIR and first["data"]["errno_name"] == "ENOTDIR"
    assert first["data"]["path"].startswith(str(objects)), first
    assert first["data"]["key"] == "results/0123456789abcdef0123456789abcdef/0.png"
    assert "500" in first["message"] and str(objects / "results") in first["message"]
