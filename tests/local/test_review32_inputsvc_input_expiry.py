"""The local R2's expiry follows the cloud bucket's rules: clients' uploaded input images (`inputs/`, POST
/api/inputs) go `storage.result_ttl_days` after their upload, as results do, on the host's sweep and at start
(what `goldgate up` puts back). Before, only `results/` expired locally: every upload stayed on disk for ever."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from goldgate.local.object_store import DurableBucket
from goldgate.logs import JsonLogger

TTL = 7
NOW = datetime.now(UTC).replace(tzinfo=None)  # as moto keeps its times: naive UTC


def _store(root: Path) -> tuple[DurableBucket, io.StringIO]:
    log = io.StringIO()
    return DurableBucket(root, "results-bucket", JsonLogger("orchestrator", log), result_ttl_days=TTL), log


def test_an_uploaded_input_image_expires_after_the_result_ttl_as_results_do(tmp_path: Path) -> None:
    store, log = _store(tmp_path / "objects")
    old_input, new_input = "inputs/" + "a" * 32 + ".png", "inputs/" + "b" * 32 + ".jpg"
    old_result, other = "results/" + "c" * 32 + "/0.png", "notes/" + "d" * 32 + ".png"
    for key, days in ((old_input, TTL), (new_input, TTL - 1), (old_result, TTL + 1), (other, TTL + 30)):
        store.save(key, b"\x89PNG " + key.encode(), {"content-type": "image/png"}, NOW - timedelta(days=days))

    assert {key for key, *_ in store.saved(NOW)} == {new_input, other}  # what a start puts back
    assert sorted(store.expire(NOW)) == sorted([old_input, old_result])
    assert {json.loads(p.read_text())["key"] for p in (tmp_path / "objects").glob("*.json")} == {new_input, other}
    (line,) = [json.loads(x) for x in log.getvalue().splitlines() if json.loads(x)["event"] == "object_store.expired"]
    assert line["data"]["objects"] == 2 and set(line["data"]["keys"]) == {old_input, old_result}
