"""Which release a job lost to RunPod counts against (`goldgate metrics`, GET /api/metrics by worker_image_tag), as
the code records it and as docs/INTERFACES.md ("Metrics") and docs/RUNBOOK.md ("Metrics and error rate") say it.

A job RunPod took and then forgot (its recorded RunPod id answers 404, its worker stored no outcome) is recorded
failed, "RunPod has no record of job ...", under the image pinned when it was created: in the cloud RunPod forgets
such a job when its ttl ends unfinished, most often the image's doing (workers that crash or fail health checks
until then), and a release's own row must show that. `(untagged)` is for jobs no RunPod job is known for: RunPod
never took them, or a recovery failed them past their deadline with no RunPod id recorded. The docs said both went
to `(untagged)`."""

from __future__ import annotations

import re
from pathlib import Path

from service_testkit import svc  # noqa: F401 - the fixture
from test_recover_expired_ttl import _never_sent, _refused_until_expiry
from test_recover_from_store_outcome import _forgotten
from test_recover_unrecorded_runpod_id import _recover

REPO = Path(__file__).resolve().parents[2]


def _by_tag(svc) -> dict:  # noqa: F811
    status, report, _ = svc.call("GET", "/api/metrics")
    assert status == 200, report
    return {g["worker_image_tag"]: g for g in report["by_worker_image_tag"]}


def test_a_job_runpod_forgot_counts_against_the_pinned_image_one_never_taken_is_untagged(svc):  # noqa: F811
    pinned = svc.app.config.worker_image_tag
    never = _never_sent(svc)  # RunPod never took it: failed at its deadline, with no RunPod id
    svc.clock[0] = _refused_until_expiry(svc, never, "not_submitted")
    assert _recover(svc, never)[1]["status"] == "failed"

    forgotten, rid = _forgotten(svc)  # RunPod took it, and has no record of it now
    assert _recover(svc, forgotten)[1]["status"] == "failed"
    assert f"RunPod has no record of job {rid}" in svc.job(forgotten)["error"]

    rows = {r["job_id"]: r["worker_image_tag"] for r in svc.rows("SELECT job_id, worker_image_tag FROM job_metrics")}
    assert rows == {forgotten: pinned, never: None}
    groups = _by_tag(svc)
    assert (groups[pinned]["count"], groups[pinned]["errors"]) == (1, 1), groups
    assert (groups[None]["count"], groups[None]["errors"]) == (1, 1), groups


def _bullet(doc: str, starts: str) -> str:
    """The list item of `doc` that starts with `starts`, its lines joined."""
    text = (REPO / doc).read_text(encoding="utf-8")
    [item] = re.findall(rf"^- {re.escape(starts)}.*?(?=^- |^\n|^#)", text, re.MULTILINE | re.DOTALL)
    return " ".join(item.split())


def test_the_docs_put_a_job_runpod_forgot_under_the_pinned_image_not_untagged():
    for doc, starts in (("docs/INTERFACES.md", "`worker_image_tag` null (`(untagged)`"),
                        ("docs/RUNBOOK.md", "`(untagged)` is the row")):
        item = _bullet(doc, starts)
        assert "no RunPod outcome" not in item, (doc, item)  # read as "RunPod forgot it": the code tags those
        assert "with no RunPod id recorded" in item, (doc, item)
        assert "RunPod has no record of job" in item and "pinned when it was created" in item, (doc, item)
