"""A webhook's outcome is recognised as the one already recorded whatever the order of its JSON keys: RunPod's
retry and its /status answer (read by `goldgate recover`) need not list `output`'s keys in the order the first
delivery did. The fingerprint hashes canonical JSON (sorted keys); in another order it was a new delivery."""

from __future__ import annotations

from typing import Any


def test_the_same_outcome_with_its_keys_in_another_order_is_a_duplicate(svc: Any) -> None:
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id, "0.png")
    completed = svc.completed(job_id, [image])
    status, first, _ = svc.deliver(job_id, completed)
    assert status == 200 and first["status"] == "completed", first

    reordered = dict(reversed(list(completed.items())))
    reordered["output"] = dict(reversed(list(completed["output"].items())))
    reordered["output"]["images"] = [dict(reversed(list(image.items())))]
    status, again, _ = svc.deliver(job_id, reordered)
    assert (status, again) == (200, {"applied": False, "reason": "duplicate", "status": "completed"}), again
    assert len(svc.rows("SELECT * FROM webhook_deliveries WHERE job_id = ?", (job_id,))) == 1
