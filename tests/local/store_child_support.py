"""The local store (moto's server, goldgate's DurableBucket attached to it) in a child process, one per "start" of
the stack over the same objects dir: the store patches moto's backend for the whole process. Each test gives the
child its own steps (test_review23_store_body_lost, test_review30_store_damaged_bodies,
test_review30_sec30_damaged_keep_aside)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from goldgate.local import object_store

SOURCE = Path(object_store.__file__).resolve().parents[2]  # the tree under test, for the child to import

# What every child runs first: a moto server on a free loopback port, `client()` an S3 client of it (`s3` is one),
# the `results` bucket, and `log`, the host log its DurableBucket is to write (the steps attach it, once they have
# patched what they need). The steps leave what each step answered in `report`.
_PRELUDE = textwrap.dedent("""
    import hashlib, io, json, logging, sys
    from pathlib import Path

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto.server import ThreadedMotoServer

    from goldgate.local.object_store import DurableBucket
    from goldgate.logs import JsonLogger

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()

    def client():
        return boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                            aws_access_key_id="k", aws_secret_access_key="s",
                            config=Config(retries={"max_attempts": 1}, response_checksum_validation="when_required"))

    s3 = client()
    s3.create_bucket(Bucket="results")
    log = io.StringIO()
""")
_EPILOGUE = textwrap.dedent("""
    server.stop()
    print(json.dumps({"report": report, "log": [json.loads(line) for line in log.getvalue().splitlines()]}))
""")


def child_script(steps: str) -> str:
    """A child's whole script: the prelude, then `steps` (its own code, dedented), then the report and the log."""
    return _PRELUDE + textwrap.dedent(steps) + _EPILOGUE


def run_child(child: str, root: Path, *args: str) -> dict:
    """One start of the store over `root`, the child's steps run against it (`args` after the root in its argv);
    what each step answered and the host log."""
    done = subprocess.run([sys.executable, "-c", child, str(root), *args], check=False,
                          capture_output=True, text=True, timeout=120, cwd=SOURCE)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def body_file(root: Path, key: str) -> Path:
    """Where the store keeps `key`'s body."""
    return root / f"{hashlib.sha256(key.encode()).hexdigest()}.bin"


def lost_lines(log: list[dict]) -> list[dict]:
    return [line for line in log if line["event"] == "object_store.body_lost"]
