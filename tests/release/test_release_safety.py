"""Release safety beyond the gate's single report: the newest evidence for a digest wins, PROD is not touched
when the smoke cases it would need cannot run, a smoke run vouches only for the image it ran on, and the
evidence readers (metrics answer, ledger lines) fail closed on answers that cannot be true."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from release_support import TOKEN, StandInApi, standin_api
from serving import serving
from test_gate_and_lock import failed
from test_promotion_evidence import Target, _released, _staging_passes

from goldgate.errors import GoldgateError
from goldgate.release.cases import CaseError
from goldgate.release.gate import PromotionRefused
from goldgate.release.history import last_verified
from goldgate.release.ledger import GENESIS, Ledger, LedgerTampered, entry_hash
from goldgate.release.promote import check_gate, promote
from goldgate.release.rollback import rollback
from goldgate.release.verification import GoldenPaths, run_golden

A = "local/worker@sha256:" + "a" * 64
B = "local/worker@sha256:" + "b" * 64


def test_a_passing_report_that_a_later_run_on_the_same_image_failed_does_not_open_the_gate(
        tmp_path: Path, paths: GoldenPaths) -> None:
    # `promote --report <the dated copy of an earlier pass>` must not outvote the newest run on that digest.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        first = run_golden(target, "staging", ledger, paths=paths, poll_s=0.01)
        assert first.passed and check_gate(target, ledger, first.path)[0].passed
        api.fail_workflows.add("wf-b")
        assert not run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        decision = check_gate(target, ledger, first.path)[0]
        assert failed(decision) == ["report_recorded"]
        with pytest.raises(PromotionRefused, match=r"report_recorded: a later golden run on staging for .* "
                                                   r"\(ledger #\d+\) did not pass"):
            promote(target, ledger, home, report_path=first.path, paths=paths)
    assert "prod" not in target.pins


def test_the_newest_passing_report_still_opens_the_gate_after_an_earlier_failure(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {"staging": A})
        api.fail_workflows.add("wf-b")
        assert not run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        api.fail_workflows.clear()
        assert run_golden(target, "staging", ledger, paths=paths, poll_s=0.01).passed
        assert promote(target, ledger, home, paths=paths).ok
    assert target.pins["prod"] == A


def _no_smoke_cases(paths: GoldenPaths) -> None:
    for case in paths.cases_dir.glob("*.yaml"):
        case.write_text(case.read_text().replace("smoke: true\n", ""))


def test_a_promotion_without_smoke_cases_is_refused_before_prod_is_touched(tmp_path: Path,
                                                                           paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        _no_smoke_cases(paths)
        deploys: list[str] = []
        real = target.deploy
        target.deploy = lambda stack, image, progress: (deploys.append(f"{stack}={image}"),  # type: ignore[method-assign]
                                                        real(stack, image, progress))[1]
        with pytest.raises(CaseError, match="no smoke cases"):
            promote(target, ledger, home, paths=paths)
    assert deploys == [] and target.pins["prod"] == A      # PROD never left A, not even for a rollback
    assert [e.get("phase") for e in ledger.entries() if e.kind in ("promotion", "rollback")] == ["intent", "outcome"]


def test_a_rollback_without_smoke_cases_is_refused_before_prod_is_touched(tmp_path: Path,
                                                                          paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = Target(api, {})
        _released(target, ledger, home, paths, A, B)
        _no_smoke_cases(paths)
        with pytest.raises(CaseError, match="no smoke cases"):
            rollback(target, ledger, home, paths=paths)
    assert target.pins["prod"] == B
    assert [e for e in ledger.entries() if e.kind == "rollback"] == []


class RepinnedByAnother(Target):
    """PROD takes the candidate, then (right after goldgate checked the pin) another writer puts A back."""

    repin_after: str | None = None

    def current_image(self, stack: str) -> str | None:
        pinned = super().current_image(stack)
        if stack == "prod" and self.repin_after is not None and pinned == self.repin_after:
            self.pins["prod"] = A          # visible from the next read on
            self.api.image_tag = A
            self.repin_after = None
        return pinned


def test_a_smoke_run_on_another_image_than_the_candidate_does_not_verify_the_candidate(
        tmp_path: Path, paths: GoldenPaths) -> None:
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = RepinnedByAnother(api, {})
        _released(target, ledger, home, paths, A)
        _staging_passes(target, ledger, paths, B)
        target.repin_after = B
        outcome = promote(target, ledger, home, paths=paths)
    assert not outcome.ok and outcome.outcome == "smoke_failed"
    assert B in (outcome.error or "") and A in (outcome.error or "")
    assert [e.seq for e in ledger.entries() if e.get("prod_image") == B] == []
    assert last_verified(ledger.entries()).image == A


@contextmanager
def metrics_api(overall: dict[str, Any]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"since": "x", "overall": overall}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as url:
        yield url


@pytest.mark.parametrize("overall", [{"count": 0, "errors": 7}, {"count": 10, "errors": -3},
                                     {"count": -10, "errors": 0}, {"count": 4, "errors": 9}])
def test_a_metrics_answer_that_cannot_be_true_is_an_unreadable_error_rate(overall: dict[str, Any]) -> None:
    from goldgate.release.error_rate import from_api

    with metrics_api(overall) as url, pytest.raises(GoldgateError, match="metrics"):
        from_api(url, TOKEN, datetime(2026, 11, 28, tzinfo=UTC))


def test_a_metrics_answer_within_bounds_is_read() -> None:
    from goldgate.release.error_rate import from_api

    with metrics_api({"count": 10, "errors": 2}) as url:
        rate = from_api(url, TOKEN, datetime(2026, 11, 28, tzinfo=UTC))
    assert (rate.jobs, rate.failed) == (10, 2)


@pytest.mark.parametrize("missing", ["ts", "kind"])
def test_a_chained_ledger_line_without_its_time_or_kind_is_named_not_a_crash(tmp_path: Path, missing: str) -> None:
    body = {"seq": 1, "ts": "2026-11-28T12:00:00.000Z", "kind": "build", "prev": GENESIS, "image": A}
    del body[missing]
    (tmp_path / "ledger.jsonl").write_text(json.dumps({**body, "hash": entry_hash(body)}) + "\n")
    with pytest.raises(LedgerTampered, match=r"ledger.jsonl:1: not a ledger entry"):
        Ledger(tmp_path).entries()


class PinUnreadable(Target):
    """PROD's pin cannot be read (the Pulumi backend or the state file is unavailable)."""

    unreadable = False

    def current_image(self, stack: str) -> str | None:
        return None if stack == "prod" and self.unreadable else super().current_image(stack)


def test_a_rollback_that_cannot_read_what_prod_runs_is_refused_not_reported_done(tmp_path: Path,
                                                                                 paths: GoldenPaths) -> None:
    # "The previous release" means nothing when the current one is unknown: redeploying the newest verified
    # release (what PROD most likely still runs) and calling that a rollback would leave PROD where it was.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = PinUnreadable(api, {})
        _released(target, ledger, home, paths, A, B)
        target.unreadable = True
        with pytest.raises(GoldgateError, match="cannot tell what prod runs.*--to"):
            rollback(target, ledger, home, paths=paths)
        assert [e for e in ledger.entries() if e.kind == "rollback"] == []
        target.unreadable = False
        assert rollback(target, ledger, home, to=A, paths=paths).ok   # naming the release still works
    assert target.pins["prod"] == A


def _png_header_only_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of width x height, all black: a few kB that decode to width*height bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + b"\0" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_past_the_pixel_limit_is_refused_before_it_is_decoded() -> None:
    from goldgate.release.perceptual import MAX_PIXELS, ImageUnreadable, inspect_image

    # Just past the limit (Pillow alone only refuses past twice it, after a warning nobody sees).
    data = _png_header_only_bomb(8001, MAX_PIXELS // 8000 + 1)
    with pytest.raises(ImageUnreadable, match="pixels"):
        inspect_image(data)
    assert inspect_image(_png_header_only_bomb(64, 64)).width == 64


class TwoStagings(Target):
    """A second STAGING stack beside the first: its role is staging, whatever a caller names it."""

    def spec(self, stack: str) -> Any:
        return super().spec("prod" if stack == "prod" else "staging")


@pytest.mark.parametrize(("staging", "prod"), [("staging", "staging-b"), ("staging", "staging"), ("prod", "prod")])
def test_promote_refuses_a_prod_that_is_not_the_prod_stack_before_anything_is_recorded_or_deployed(
        tmp_path: Path, paths: GoldenPaths, staging: str, prod: str) -> None:
    # A library caller (the CLI checks its own flags) naming a STAGING stack as `prod`, or PROD as the stack
    # under test: the gate would pass on STAGING's evidence and the ledger would call the result PROD's release.
    home = tmp_path / "home"
    ledger = Ledger(home)
    with standin_api(StandInApi(image_tag=A)) as api:
        target = TwoStagings(api, {})
        _staging_passes(target, ledger, paths, A)
        pins, entries = dict(target.pins), len(ledger.entries())
        deploys: list[str] = []
        real = target.deploy
        target.deploy = lambda stack, image, progress: (deploys.append(f"{stack}={image}"),  # type: ignore[method-assign]
                                                        real(stack, image, progress))[1]
        with pytest.raises(GoldgateError, match="role") as refused:
            promote(target, ledger, home, staging=staging, prod=prod, paths=paths)
    assert "\n" not in str(refused.value)
    assert deploys == [] and target.pins == pins
    assert len(ledger.entries()) == entries
