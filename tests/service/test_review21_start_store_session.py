"""Every S3 store a process connects shares one botocore session: building a session re-reads the endpoint
and S3 model JSON (0.1-0.2 s of CPU), so a second connect used to cost as much as the first. Connects from
several threads at once (a session is not safe to create clients from concurrently) each still get a working
client."""

from __future__ import annotations

import subprocess
import sys

from service_testkit import BUCKET, ROOT, S3_KEY_ID, S3_SECRET

_CONNECT = """
import asyncio, sys, threading
import botocore.session

built = []

class Counted(botocore.session.Session):
    def __init__(self, *args, **kwargs):
        built.append(1)
        super().__init__(*args, **kwargs)

botocore.session.Session = Counted
from service.s3_store import S3ResultStore

endpoint, bucket, key_id, secret = sys.argv[1:5]
found, failed = [], []

def connect_and_read(n):
    try:
        store = S3ResultStore.connect(endpoint, bucket, key_id, secret)
        found.append(asyncio.run(store.head(f"review21/missing-{n}")))
    except Exception as exc:  # reported below, with the count
        failed.append(repr(exc))

threads = [threading.Thread(target=connect_and_read, args=(n,)) for n in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
connect_and_read(4)
print(f"sessions={len(built)} answers={found} failed={failed}")
"""


def test_connects_in_one_process_share_one_botocore_session_and_each_reads_its_store(moto_endpoint):
    proc = subprocess.run([sys.executable, "-c", _CONNECT, moto_endpoint, BUCKET, S3_KEY_ID, S3_SECRET],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sessions=1 answers=[None, None, None, None, None] failed=[]", proc.stdout
    assert S3_SECRET not in proc.stdout + proc.stderr
