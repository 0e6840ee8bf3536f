"""The local R2 on a full disk: a result upload the disk cannot take must fail (the worker's upload fails, and
with it the job, saying why), not live on in moto's memory with no copy on disk, to be lost at the next
`goldgate up`.

The moto server and its DurableBucket run in a child whose files may not grow past a few bytes (RLIMIT_FSIZE,
with SIGXFSZ ignored: EFBIG where a full disk says ENOSPC), set once the server is up; the child reports on a
pipe, which the limit does not touch. The body's write fails part-way, as on a disk that fills during it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from goldgate.local import object_store

SOURCE = Path(object_store.__file__).resolve().parents[2]  # the tree under test, for the child to import

_CHILD = textwrap.dedent("""
    import io, json, resource, signal, sys
    from pathlib import Path

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto.server import ThreadedMotoServer

    from goldgate.local.object_store import DurableBucket
    from goldgate.logs import JsonLogger

    root = Path(sys.argv[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s",
                      config=Config(retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="results")
    DurableBucket(root, "results", JsonLogger("orchestrator", io.StringIO()), result_ttl_days=7).attach()
    key, body = "results/0123456789abcdef0123456789abcdef/0.png", b"\\x89PNG" + bytes(8192)
    report = {}

    def put(name):
        try:
            s3.put_object(Bucket="results", Key=key, Body=body, ContentType="image/png", IfNoneMatch="*")
            report[name] = 200
        except ClientError as exc:
            report[name] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        try:
            report[name + "_get"] = len(s3.get_object(Bucket="results", Key=key)["Body"].read())
        except ClientError as exc:
            report[name + "_get"] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        report[name + "_files"] = sorted(p.suffix for p in root.iterdir()) if root.is_dir() else []

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))  # the disk fills up under the running store
    put("full")
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # room again: the uploader's retry
    put("room")
    server.stop()
    print(json.dumps(report))
""")


def test_an_upload_the_full_disk_cannot_keep_fails_and_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "objects" / "results"
    done = subprocess.run([sys.executable, "-c", _CHILD, str(root)], check=False, capture_output=True,
                          text=True, timeout=120, cwd=SOURCE)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["full"] == 500, report  # the uploader sees its PUT fail
    assert report["full_get"] == 404, "moto served an object it had no copy of on disk"
    assert report["full_files"] == [], "a part of the body written before the disk filled was left behind"
    assert report["room"] == 200 and report["room_get"] == 8196, report  # its retry creates the object anew
    assert report["room_files"] == [".bin", ".json"], report
