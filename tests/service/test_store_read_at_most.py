"""The S3 store's `read_at_most` (what a recovery reads outcome.json through) against moto: an object whole, None
for a missing one, ObjectTooLarge for one over the limit."""

from __future__ import annotations

import pytest

from service.ports import ObjectTooLarge

JOB = "c" * 32


def test_the_s3_store_reads_an_object_whole_none_when_missing_and_refuses_one_over_the_limit(svc):
    data = bytes(range(256)) * 1024  # 256 KB: four of the store's chunks
    key = svc.put_result(JOB, name="whole.bin", data=data, content_type="application/octet-stream")["key"]
    store = svc.app.store

    assert svc.run(store.read_at_most(key, len(data))) == data
    assert svc.run(store.read_at_most(f"results/{JOB}/missing.json", len(data))) is None
    with pytest.raises(ObjectTooLarge, match=f"{key} has more than {len(data) - 1} bytes"):
        svc.run(store.read_at_most(key, len(data) - 1))
