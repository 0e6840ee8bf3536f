"""A gap a mutation audit of goldgate/ops/bulk_cancel.py found: `client_seen` (--json) says whether any job ever named
the client only when nothing was selected (a likely misspelt name); when jobs are selected it is null."""

from __future__ import annotations

from pathlib import Path

from test_review34_clients_bulk_cancel import STACK, _preview, db  # noqa: F401 (db: a fixture)

from goldgate.ops import bulk_cancel
from goldgate.ops.bulk_cancel import QUEUED, Selection


def test_client_seen_is_null_when_the_clients_jobs_are_selected(db: Path) -> None:  # noqa: F811
    _, report, _ = _preview(db, Selection(QUEUED, client="alice"))
    assert report["selected"] == 3 and report["client_seen"] is None
    assert _preview(db, Selection(QUEUED, client="carol"))[1]["client_seen"] is False
    assert bulk_cancel.select_local(db, STACK, Selection(QUEUED, client="alice")).client_seen is None
