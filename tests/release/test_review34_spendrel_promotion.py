"""Review 34 (spendrel): golden, smoke, promote and rollback meet a stack at its daily spend limit
(api.daily_spend_limit_usd). At the limit the service answers every create 429 `spend_limit_reached` (nothing
written) until 00:00 UTC: a smoke run that meets it judged nothing (`smoke_not_run`, no verdict against the digest)
instead of failing the image, and a promotion or rollback reads PROD's `daily_spend` (GET /api/metrics) first and
refuses, changing nothing, when PROD is at its limit. A read that fails does not block. Over the in-process target of
test_promotion_evidence.py, its stand-in job API taught the limit's two answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from release_support import StandInApi, _handler, invoke, render_png, serving, write_case
from test_promotion_evidence import A, B, Target, _released, _staging_passes

import goldgate.commands.release as release_commands
from goldgate.errors import GoldgateError
from goldgate.release.cases import load_cases
from goldgate.release.golden import ApiAccess, SuiteTarget, run_suite
from goldgate.release.ledger import Ledger
from goldgate.release.promote import promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths
from goldgate.spec import Thresholds

# As service/spend.py words it (its `refusal`), for a day at $0.5 of a $0.5 limit.
REFUSAL = ("the jobs that ended today (2026-12-02, UTC) are estimated at $0.5, at or over the stack's daily spend "
           "limit of $0.5 (api.daily_spend_limit_usd): this job was not created; creates are taken again at "
           "2026-12-03T00:00:00Z (Retry-After, 3600 s), or once the limit is raised; jobs already queued or running "
           "go on and are counted")
AT_LIMIT = {"day": "2026-12-02", "spend_usd": 0.5, "jobs": 3, "limit_usd": 0.5}
UNDER_LIMIT = {"day": "2026-12-02", "spend_usd": 0.1, "jobs": 1, "limit_usd": 0.5}


@dataclass
class SpendApi(StandInApi):
    """The stand-in job API with a daily spend limit: creates after the first `creates_taken` are refused 429
    spend_limit_reached (None: every create taken); GET /api/metrics answers `daily_spend` (None: no such key,
    a service from before the limit), or `metrics_status` with a body that is not a report, or hangs up when
    `metrics_status` is "drop" (or a 200 of HTML when it is "html")."""

    creates_taken: int | None = None
    daily_spend: dict[str, Any] | None = None
    metrics_status: int | str = 200
    creates: list[str] = field(default_factory=list)   # the workflow of each create sent, taken or refused
    metrics_reads: int = 0


def _spend_handler(api: SpendApi) -> type:
    base = _handler(api)

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            if self.path == "/api/queue/create" and self.headers.get("authorization"):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                api.creates.append(body["workflow_id"])
                if api.creates_taken is not None and len(api.creates) > api.creates_taken:
                    self.send_response(429)
                    self.send_header("content-type", "application/json")
                    self.send_header("retry-after", "3600")
                    data = json.dumps({"error": {"code": "spend_limit_reached", "message": REFUSAL}}).encode()
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                job_id = f"job-{len(api.jobs) + 1}"
                api.jobs[job_id] = {"workflow": body["workflow_id"], "inputs": body["inputs"], "polls": 0}
                self._json(202, {"job_id": job_id, "status": "queued", "trace_id": "0" * 32})
                return
            super().do_POST()

        def do_GET(self) -> None:
            if not self.path.startswith("/api/metrics"):
                return super().do_GET()
            api.metrics_reads += 1
            if api.metrics_status == "drop":
                self.close_connection = True
                return None
            if api.metrics_status != 200:
                status = 200 if api.metrics_status == "html" else int(api.metrics_status)
                return self._send(status, b"<html>upstream error</html>", "text/html")
            report: dict[str, Any] = {"since": None, "overall": {}, "by_worker_image_tag": []}
            if api.daily_spend is not None:
                report["daily_spend"] = api.daily_spend
            return self._json(200, report)

    return Handler


@contextmanager
def spend_api(**knobs: Any) -> Iterator[SpendApi]:
    api = SpendApi(image_tag=A, **knobs)
    with serving(api, _spend_handler(api)):
        yield api


def _entries(ledger: Ledger) -> list[dict[str, Any]]:
    return [e.to_dict() for e in ledger.entries()]


# -- a run that meets the limit ---------------------------------------------------------------------------------


def _three_cases(root: Path, references: Path | None = None) -> list[Any]:
    """Cases one, three and two (the order they load and run in), each with its reference under `references`."""
    for name, workflow in (("one", "wf-a"), ("two", "wf-a"), ("three", "wf-b")):
        write_case(root, name, f"workflow: {workflow}\ninputs: {{prompt: {name}, seed: 1, width: 64, height: 64}}\n"
                               "expect: {images: 1, width: 64, height: 64}\n")
        if references is not None:
            references.mkdir(exist_ok=True)
            (references / f"{name}.png").write_bytes(render_png(f"{workflow}:{name}:1:0", 64, 64))
    return load_cases(root)


def _suite_target() -> SuiteTarget:
    return SuiteTarget(stack="prod", target="local", image=A, workflow_version="2026.11.0", thresholds=Thresholds())


def test_no_create_is_sent_after_the_first_spend_limit_refusal_and_the_run_is_no_verdict(tmp_path: Path) -> None:
    lines: list[str] = []
    cases = _three_cases(tmp_path / "cases", tmp_path / "refs")
    with spend_api(creates_taken=1) as api, pytest.raises(GoldgateError) as raised:
        run_suite(cases, ApiAccess(api.url, "test-token-not-a-secret"), _suite_target(), suite="smoke",
                  references_dir=tmp_path / "refs", concurrency=1, poll_s=0.01, progress=lines.append)
    # one case (in order, one at a time) got its job; the second was refused; the third was never sent
    assert len(api.creates) == 2 and len(api.jobs) == 1, api.creates
    message = str(raised.value)
    assert message == (f"prod's daily spend limit was reached: no report was written, and the run is no verdict on "
                       f"{A} (2 of 3 case(s) got no job, none sent after the first refusal; the 1 created before it "
                       "ran to their end (1 passed, 0 failed), not recorded); run it again after 00:00 UTC, or once "
                       'api.daily_spend_limit_usd is raised and applied (docs/RUNBOOK.md, "Clients get 429 '
                       f'spend_limit_reached"); queue/create answered 429 spend_limit_reached: {REFUSAL}'), message
    assert lines[0].startswith("one: pass in "), lines
    refused = f"queue/create answered 429 spend_limit_reached: {REFUSAL}; no job was created"
    assert lines[1] == f"three: not run ({refused})", lines
    assert lines[2] == ("two: not run (not sent: an earlier create of this run was refused for the stack's daily "
                        "spend limit)"), lines


def test_a_case_created_before_the_refusal_runs_to_its_end(tmp_path: Path) -> None:
    # Both creates go out at once: one is taken, the other refused. The taken job is still polled to its end (it
    # runs, and is billed, whatever the run does), and the message says how it went.
    with spend_api(creates_taken=1, polls_before_done=3) as api:
        cases = _three_cases(tmp_path / "cases")[:2]
        with pytest.raises(GoldgateError) as raised:
            run_suite(cases, ApiAccess(api.url, "test-token-not-a-secret"), _suite_target(), suite="smoke",
                      references_dir=tmp_path / "refs", concurrency=2, poll_s=0.01)
    assert len(api.jobs) == 1 and next(iter(api.jobs.values()))["polls"] > 3
    assert "(1 of 2 case(s) got no job, none sent after the first refusal; the 1 created before it ran to their end " \
           "(0 passed, 1 failed), not recorded)" in str(raised.value), raised.value  # no reference in tmp_path/refs


def test_a_promotion_whose_smoke_run_meets_the_limit_is_smoke_not_run_and_no_verdict_on_the_image(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    # PROD's metrics said it was under its limit when the promotion began; the day crossed it before the smoke run
    with spend_api(daily_spend=UNDER_LIMIT) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        api.creates_taken = len(api.creates)
        outcome = promote(target, ledger, home, paths=paths)
        assert outcome.outcome == "smoke_not_run", outcome.message()
        assert "prod's daily spend limit was reached" in (outcome.error or "") and REFUSAL in (outcome.error or "")
        assert outcome.rollback is not None and outcome.rollback.outcome == "smoke_not_run"
        message = outcome.message()
        assert message.startswith(f"PROD smoke did not run for {B}: prod's daily spend limit was reached"), message
        assert f"nothing was judged of {B} (no ledger verdict against it)" in message, message
        # no smoke run of B on PROD is recorded, failed or otherwise
        assert not [e for e in _entries(ledger) if e["kind"] == "golden" and e.get("stack") == "prod"
                    and e.get("image") == B]
        last = _entries(ledger)[-1]
        assert (last["kind"], last["outcome"]) == ("promotion", "smoke_not_run"), last
        # after 00:00 UTC: B is promoted without --retry-rejected (PROD holds no verdict against it)
        api.creates_taken = None
        again = promote(target, ledger, home, paths=paths)
    assert again.ok, again.message()
    assert target.pins["prod"] == B


# -- PROD at its limit before the change ------------------------------------------------------------------------


def test_a_promotion_to_a_prod_at_its_limit_is_refused_before_it_changes_anything(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    lines: list[str] = []
    with spend_api() as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        before, sent = _entries(ledger), len(api.creates)
        api.daily_spend, api.creates_taken = AT_LIMIT, sent
        with pytest.raises(GoldgateError) as raised:
            promote(target, ledger, home, paths=paths, progress=lines.append)
    message = str(raised.value)
    assert message.startswith("cannot promote to prod: prod is at its daily spend limit ($0.5 estimated for the 3 "
                              "job(s) that ended today, 2026-12-02 UTC; api.daily_spend_limit_usd is $0.5), so it "
                              "refuses every create until 00:00 UTC and this promotion's smoke run could not run: "
                              f"prod would take {B} unverified and be rolled back for nothing; nothing was changed or "
                              "recorded: run it again after 00:00 UTC"), message
    assert "\n" not in message
    assert target.pins["prod"] == A and _entries(ledger) == before and len(api.creates) == sent
    assert not any(line.startswith("gate passed; promoting") for line in lines), lines


def test_a_rollback_of_a_prod_at_its_limit_is_refused_before_it_changes_anything(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with spend_api() as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        before, sent = _entries(ledger), len(api.creates)
        api.daily_spend, api.creates_taken = AT_LIMIT, sent
        with pytest.raises(GoldgateError) as raised:
            rollback(target, ledger, home, paths=paths)
    message = str(raised.value)
    assert message.startswith("cannot roll prod back: prod is at its daily spend limit ($0.5 estimated"), message
    assert f"this rollback's smoke run could not run: it would leave prod on {A} unverified" in message, message
    assert "nothing was changed or recorded" in message and "\n" not in message, message
    assert target.pins["prod"] == B and _entries(ledger) == before and len(api.creates) == sent


def test_promote_check_says_a_prod_at_its_limit_would_be_refused(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with spend_api() as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        before = _entries(ledger)
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        argv = ("promote", "--check", "--home", str(home), "--cases-dir", str(paths.cases_dir), "--references-dir",
                str(paths.references_dir), "--reports-dir", str(paths.reports_dir))
        code, out, _ = invoke(capsys, *argv)
        assert code == 0 and out.rstrip().endswith("gate would pass"), out   # under the limit: as before
        api.daily_spend = AT_LIMIT
        code, out, _ = invoke(capsys, *argv)
        assert code == 1, out
        assert out.rstrip().splitlines()[-1].startswith(
            "gate would pass; and the promotion would be refused now: cannot promote to prod: prod is at its daily "
            "spend limit ($0.5 estimated"), out
        code, out, _ = invoke(capsys, *argv, "--json")
    assert code == 1 and json.loads(out)["passed"] is True
    assert json.loads(out)["refused"].startswith("cannot promote to prod: prod is at its daily spend limit"), out
    assert target.pins["prod"] == A and _entries(ledger) == before


# -- a read that fails does not block ---------------------------------------------------------------------------


@pytest.mark.parametrize("status, said", [(503, "it answered 503"), ("html", "not JSON"), ("drop", "")])
def test_a_metrics_read_that_fails_is_said_in_one_line_and_does_not_block(
        tmp_path: Path, paths: GoldenPaths, status: int | str, said: str) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    lines: list[str] = []
    with spend_api() as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        api.metrics_status = status
        outcome = promote(target, ledger, home, paths=paths, progress=lines.append)
    assert outcome.ok and target.pins["prod"] == B, outcome.message()
    warned = [line for line in lines if "daily spend" in line]
    assert len(warned) == 1, lines
    assert warned[0].startswith("warning: could not read prod's daily spend (GET /api/metrics: "), warned
    assert warned[0].endswith("going on without checking its api.daily_spend_limit_usd") and said in warned[0], warned


def test_a_service_from_before_the_limit_is_not_checked_and_not_warned_about(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    lines: list[str] = []
    with spend_api() as api:   # its GET /api/metrics has no daily_spend
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        reads = api.metrics_reads
        outcome = promote(target, ledger, home, paths=paths, progress=lines.append)
        assert api.metrics_reads == reads + 1
    assert outcome.ok and not [line for line in lines if "daily spend" in line], lines


def test_a_release_whose_staging_is_at_its_limit_stops_before_the_build(
        tmp_path: Path, paths: GoldenPaths, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def build(args: Any, ledger: Ledger) -> None:
        built.append(args.context)
        raise GoldgateError("the build ran")

    class UpStacks(Target):
        def ensure_up(self, stack: str, progress: Any) -> None:
            pass

    home = tmp_path / "home"
    with spend_api(daily_spend=AT_LIMIT, creates_taken=0) as api:
        target = UpStacks(api, {"staging": A, "prod": A})
        monkeypatch.setattr(release_commands, "_deployer", lambda _args: target)
        monkeypatch.setattr(release_commands, "do_build", build)
        monkeypatch.setattr(release_commands, "_check_build", lambda _args: None)   # its own tests check it
        code, _, err = invoke(capsys, "release", "--home", str(home), "--cases-dir", str(paths.cases_dir),
                              "--references-dir", str(paths.references_dir), "--reports-dir", str(paths.reports_dir))
    assert code == 1 and built == [], err
    error = next(line for line in err.splitlines() if line.startswith("goldgate: error: "))
    assert error.startswith("goldgate: error: cannot release: staging is at its daily spend limit ($0.5 estimated for "
                            "the 3 job(s) that ended today, 2026-12-02 UTC; api.daily_spend_limit_usd is $0.5), so it "
                            "refuses every create until 00:00 UTC and the golden run on staging could not run, so "
                            "nothing would be promoted; nothing was changed or recorded"), err
    assert target.pins == {"staging": A, "prod": A} and api.creates == [] and Ledger(home).entries() == []
