"""The 404 for a result key the store does not hold (service/routes.py, _not_held and _expired). Its job is read
only to say more (`result_missing`, expired or lost); a database that fails that read must not turn the
404 into a 500. And a finished_at with no time zone is no time the service can compare: the answer says
both causes, not a guess from the machine's local time."""

from __future__ import annotations

from typing import Any

from service.routes import _expired

DAY_S = 86_400
NOW_S = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def test_a_missing_result_read_while_the_database_fails_is_still_a_404(svc: Any, monkeypatch) -> None:
    async def failing(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(svc.app.db, "query", failing)
    status, body, _ = svc.call("GET", f"/api/result/results/{'a' * 32}/0.png")
    assert (status, body["error"]["code"]) == (404, "not_found"), body


def test_whether_a_result_expired_is_told_only_from_a_time_with_its_zone() -> None:
    assert _expired("2027-01-01T08:00:00.000Z", 7, NOW_S) is True
    assert _expired("2027-01-14T08:00:00.000Z", 7, NOW_S) is False
    assert _expired("2027-01-01T08:00:00.000+00:00", 7, NOW_S) is True
    assert _expired("2027-01-01T08:00:00.000", 7, NOW_S) is None  # no zone: not a time to compare
    assert _expired("not a time", 7, NOW_S) is None
    assert _expired(None, 7, NOW_S) is None
    assert _expired("2027-01-01T08:00:00.000Z", None, NOW_S) is None
