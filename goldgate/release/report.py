"""Golden reports: the JSON evidence a promotion is gated on. Built from case results, bound to the
stack and image digest that served them, written as `reports/latest.json` plus a dated copy, and
read back with validation (the gate must never trip over a hand-edited or truncated file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldgate.errors import GoldgateError
from goldgate.release.cases import GOLDEN_DIR
from goldgate.spec import show

if TYPE_CHECKING:
    from goldgate.release.golden import SuiteTarget

SCHEMA = "goldgate.golden-report.v1"
REPORTS_DIR = GOLDEN_DIR / "reports"
_MAX_REPORT = 20_000_000


class ReportError(GoldgateError):
    """A golden report is missing, unreadable, or not a report."""


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100): always one of the observed values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "mean": None, "max": None, "min": None}
    return {"count": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "mean": round(sum(values) / len(values), 3), "max": max(values), "min": min(values)}


def latency_words(latency: Any, cases: int, wall_time_s: Any, sum_latency_s: Any) -> str:
    """A report's latencies in one line, as the golden, release and HTML summaries print them. Only a case whose
    job reached a final status is timed: a run whose every case failed before (a wrong API token, a stack down)
    has no latency to show, and one with some such cases has its figures over the timed ones alone."""
    lat = latency if isinstance(latency, dict) else {}
    timed = lat.get("count") if isinstance(lat.get("count"), int) else 0
    if not timed:
        return (f"latency: none measured (no case's job reached a final status; see the failures); "
                f"wall time {wall_time_s} s")
    over = "" if timed == cases else f" over the {timed} timed case{'' if timed == 1 else 's'} of {cases}"
    summed = "summed over cases" if timed == cases else "summed over the timed cases"
    return (f"latency{over} p50 {lat.get('p50')} s, p95 {lat.get('p95')} s, mean {lat.get('mean')} s, max "
            f"{lat.get('max')} s; wall time {wall_time_s} s vs {sum_latency_s} s {summed}")


def build_report(target: SuiteTarget, api_url: str, results: list[dict[str, Any]], *, started: str,
                 finished: str, wall_time_s: float, suite: str, image_after: str | None,
                 references_updated: bool = False, workflows: dict[str, Any] | None = None) -> dict[str, Any]:
    """`workflows` (a full run's, see golden.workflow_coverage): what the stack serves and which of those no case
    ran; each such workflow fails the run (it would reach PROD untested), as does a stack whose workflows could not be
    read. Not a run that rewrites the references: it opens no gate, and makes one new case's reference alone."""
    latencies = [r["latency_s"] for r in results if r.get("latency_s") is not None]
    summary = latency_summary(latencies)
    failures = [f"{r['id']}: {c['name']}: {c['detail']}" for r in results for c in r["checks"] if not c["passed"]]
    mean = summary["mean"]
    if mean is not None and mean > target.thresholds.golden_mean_latency_s:
        failures.append(f"mean latency {mean} s exceeds golden_mean_latency_s "
                        f"{target.thresholds.golden_mean_latency_s:g} s")
    if image_after != target.image:
        failures.append(f"the stack's image changed during the run ({target.image} -> {image_after}); "
                        "the report cannot vouch for either")
    if target.image is None:
        failures.append(f"stack {target.stack} has no pinned image; deploy one first")
    if workflows is not None and not references_updated:
        failures.extend(coverage_failures(workflows, target.stack))
    tags = sorted({r["worker_image_tag"] for r in results if r.get("worker_image_tag")})
    return {
        "schema": SCHEMA,
        "suite": suite,
        "stack": target.stack,
        "target": target.target,
        "api_url": api_url,
        "image": target.image,
        "image_digest": target.image.split("@", 1)[1] if target.image and "@" in target.image else None,
        "worker_image_tag": tags[0] if len(tags) == 1 else (tags or None),
        "workflow_version": target.workflow_version,
        "workflow_versions": sorted({r["workflow_version"] for r in results if r.get("workflow_version")}),
        "started_at": started,
        "finished_at": finished,
        "wall_time_s": round(wall_time_s, 3),
        "sum_latency_s": round(sum(latencies), 3),
        "latency_s": summary,
        "thresholds": asdict(target.thresholds),
        "cases": results,
        "failures": failures,
        "references_updated": references_updated,
        **({} if workflows is None else {"workflows": workflows}),
        "passed": not failures and all(r["passed"] for r in results),
    }


ADD_A_CASE = '"To add a case" in scripts/golden-tests/README.md'


def coverage_failures(workflows: dict[str, Any], stack: str) -> list[str]:
    """A failure line for each workflow `stack` serves that no case of the run runs, or one saying they could not be
    read (see build_report)."""
    uncovered = workflows.get("uncovered")
    if not isinstance(uncovered, list):
        return [(f"the workflows {stack} serves could not be read (GET /api/workflows: {workflows.get('error')}), "
                 "so nothing shows that a golden case runs each of them; run the golden tests again")]
    return [(f"workflow {name}: {stack} serves it and no golden case runs it (a new workflow would reach PROD "
             f"untested): add a case for it ({ADD_A_CASE})") for name in uncovered]


def write_report(report: dict[str, Any], reports_dir: Path = REPORTS_DIR, latest: bool = True) -> Path:
    """Write the dated copy (and latest.json); returns the dated copy's path. An OSError names the report file
    it could not write (`check_reports_dir` first, to find a read-only checkout out before the cases run)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    label = report["stack"] + ("" if report.get("suite") == "full" else f"-{report.get('suite')}")
    dated = reports_dir / f"{stamp}-{label}.json"
    data = (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8")
    atomic_write(dated, data)
    if latest:
        atomic_write(reports_dir / "latest.json", data)
    return dated


def check_reports_dir(reports_dir: Path = REPORTS_DIR) -> None:
    """ReportError when a golden report cannot be written into `reports_dir`: for a command to call before its
    cases run, and before PROD changes. The reports live in the checkout goldgate runs from (a read-only one,
    a clone of another user's): found unwritable only after the cases ran, a PROD smoke run that passed still
    failed its promotion (recorded as smoke_failed, and PROD rolled back). Leaves no trace: the directories it
    made to probe are removed again (a run refused later, by a lock, has written nothing)."""
    made: list[Path] = []
    try:
        for directory in (*reversed(reports_dir.parents), reports_dir):
            if not directory.is_dir():
                directory.mkdir()
                made.append(directory)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=reports_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        # The probe's name is no file to look for: the message names the directory.
        raise ReportError(f"golden reports cannot be written: {exc.strerror or exc}; each golden run writes "
                          f"its report into {reports_dir}, in the checkout goldgate runs from: make that "
                          "directory writable with free space, or run goldgate from a writable clone; no "
                          "golden case was run") from None
    finally:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()


def load_report(path: Path) -> dict[str, Any]:
    return read_report(path)[0]


def load_report_of(path: Path, target: str) -> dict[str, Any]:
    """The report at `path`, refused when it is another target's: the local and the cloud golden runs write the same
    latest.json, and a local run's downloads are no evidence about the cloud's R2 (nor the reverse)."""
    report = load_report(path)
    ran_on = report.get("target")
    if ran_on is not None and ran_on != target:
        raise ReportError(f"{path} is a golden run on the {show(ran_on)} target (image {show(report.get('image'))}), "
                          f"not the {target} target's: no {target} golden run to judge; "
                          f"run `goldgate golden staging{' --target cloud' if target == 'cloud' else ''}`")
    return report


def read_report(path: Path, on: str = "") -> tuple[dict[str, Any], str]:
    """The report at `path` and the sha256 of the very bytes it was read from (what the ledger records). `on`: the
    target option the golden command its advice names needs (" --target cloud"; none for the local target)."""
    try:
        data = read_bounded(path)
        report = json.loads(data.decode("utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise ReportError(f"no golden report at {path}: {_why_missing(path, on)}") from None
    except IsADirectoryError:  # the reports directory given for its report
        raise ReportError(f"{path} is a directory, not a golden report: name the report file in it, e.g. "
                          f"{path / 'latest.json'}") from None
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, bad JSON, absurd numbers
        # The system's words for an OSError: its str() names the file descriptor read from, not the file.
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {str(exc)[:200]}"
        raise ReportError(f"{path} is not a readable golden report ({why}); "
                          f"run `goldgate golden staging{on}` again") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ReportError(f"{path} is not a golden report (schema {SCHEMA} expected)")
    return report, hashlib.sha256(data).hexdigest()


def _why_missing(path: Path, on: str = "") -> str:
    """Why there is no report at `path`. Where the golden runs write it by default, none has yet; a path the operator
    named (`--report`, `--reports-dir`) is named as it is, since a typo there is no missing golden run."""
    if Path(os.path.abspath(path)) == Path(os.path.abspath(REPORTS_DIR / "latest.json")):
        return f"run `goldgate golden staging{on}` first"
    # The nearest of its directories that exists: what is wrong with the path given is just below it.
    missing, parent = path, path.parent
    while parent != parent.parent and not os.path.lexists(parent):
        missing, parent = parent, parent.parent
    if os.path.lexists(parent) and not parent.is_dir():
        return f"{parent} is not a directory (check the path given)"
    if missing != path:
        return f"directory {missing} does not exist (check the path given)"
    if path.name == "latest.json":  # a reports directory that exists: a golden run given it writes its latest.json
        return (f"no such file (check the path given; `goldgate golden staging{on} --reports-dir {parent}` "
                "writes one there)")
    return "no such file (check the path given)"


def read_bounded(path: Path) -> bytes:
    """The bytes of the report file at `path`; ReportError past _MAX_REPORT, OSError as the system says it.

    Read at most one byte past the limit: a device or pipe (/dev/zero, `<(...)`) has no size to stat. Opened
    without waiting (a named pipe nobody writes would block open() for ever), then read blocking: a pipe's writer
    is waited for, and a pipe without one reads as empty."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_MAX_REPORT + 1)
    if len(data) > _MAX_REPORT:
        raise ReportError(f"{path} is larger than {_MAX_REPORT} bytes; it is not a golden report")
    return data


def report_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` whole or not at all: a run killed, or a disk filled, while it writes leaves the
    file as it was (the gate reads latest.json) and no partial copy beside it. The copy reaches the disk before it
    takes the name, so a power cut cannot leave the name on an empty file; a symlink at `path` is replaced, not
    followed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):   # on a read-only file system there is none, and unlink says EROFS
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, str(tmp), tmp):
            # named by the file it was writing, not by its temp name (which nobody will find)
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise
