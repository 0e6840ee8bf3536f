"""`goldgate jobs` against a stack whose running service predates GET /api/jobs (its 404 for the route): the one
error line says so and how to deploy this release to it, local or cloud; any other refusal passes as it came."""

from __future__ import annotations

from typing import Any

import pytest

from goldgate.cli import main
from goldgate.commands import local
from goldgate.errors import GoldgateError


class _Api:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        raise GoldgateError(f"{method} {path} answered {self.answer}")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("target", "redeploy"), [("local", "`goldgate down staging && goldgate up staging`"),
                                                  ("cloud", "`pulumi up --stack staging`")])
def test_a_service_without_the_route_is_named_with_the_way_to_deploy_it(monkeypatch, capsys, tmp_path, target,
                                                                       redeploy) -> None:
    monkeypatch.setattr(local, "stack_api", lambda args, stack: _Api("404: not_found: no route"))
    assert main(["jobs", "staging", "--target", target, "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "GET /api/jobs answered 404" in err and "predates GET /api/jobs" in err and redeploy in err, err


def test_another_refusal_is_left_as_it_came(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setattr(local, "stack_api", lambda args, stack: _Api("401: unauthorized: wrong token"))
    assert main(["jobs", "staging", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "answered 401" in err and "predates" not in err, err


def test_at_the_most_jobs_a_run_shows_the_list_going_on_does_not_advise_raising_limit() -> None:
    from goldgate.commands.jobs import render_text

    jobs = [{"job_id": f"{n:032x}", "status": "completed"} for n in range(1000)]
    last = render_text({"jobs": jobs, "more": True}, "prod", None).splitlines()[-1]
    assert last == ("1000 jobs shown, newest first; the list goes on: narrow with --status, --client or "
                    "--created-after"), last
    last = render_text({"jobs": jobs[:3], "more": True}, "prod", None).splitlines()[-1]
    assert "raise --limit (at most 1000)" in last
