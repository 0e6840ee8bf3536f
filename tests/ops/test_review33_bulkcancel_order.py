"""What `goldgate cancel --all-queued|--all-active` says of its order is the order it cancels in: --all-queued
selects no job in progress, so it does not announce "in progress first"."""

from __future__ import annotations

from goldgate.ops import bulk_cancel


def _said(statuses: tuple[str, ...]) -> str:
    selection = bulk_cancel.Selection(statuses)
    selected = bulk_cancel.Selected([bulk_cancel.SelectedJob("a" * 32, "sdxl-txt2img", "queued",
                                                             "2026-12-02T05:00:00.000Z")], 1)
    return bulk_cancel.render_text(bulk_cancel.report("staging", "local", selection, selected, "goldgate cancel "
                                                      "--all-queued --stack staging --yes").to_dict())


def test_all_queued_announces_oldest_first_and_all_active_in_progress_first() -> None:
    queued, active = _said(bulk_cancel.QUEUED), _said(bulk_cancel.ACTIVE)
    assert "oldest first" in queued and "in progress first" not in queued, queued
    assert "in progress first, then oldest first" in active, active
