"""Golden runner: runs cases concurrently against a stack through its public API only
(POST /api/inputs for each input image a case sends, POST /api/queue/create, GET /api/status/<id> until
terminal, GET each result), checks each result
against the case's expectations and its reference image, and returns a report bound to the image
the stack ran. Polling *our* API for a job's status is the client's view; the service itself never
polls RunPod.

Each case's create carries its own Idempotency-Key, so a create whose answer was lost is sent again
with that key and answered with the job it made: a flaky network neither fails a case nor runs (and
bills) it twice. A status poll that fails on the way is polled again, with backoff, until the case's
latency limit. An interrupted run (Ctrl-C) stops every case at its next wait and writes no report.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from goldgate.bounded_http import tls_context
from goldgate.errors import GoldgateError, describe
from goldgate.logs import now_rfc3339
from goldgate.release.cases import (
    GOLDEN_DIR,
    REFERENCES_DIR,
    REPO_ROOT,
    GoldenCase,
    InputFile,
    check_latency_limits,
    check_own_references,
    references_for,
    shown_dir,
)
from goldgate.release.perceptual import (
    ImageFacts,
    ImageUnreadable,
    color_distance,
    hamming,
    inspect_image,
    preview,
)
from goldgate.release.report import REPORTS_DIR, atomic_write, build_report
from goldgate.spec import Thresholds
from service.inputs import INPUT_KEY

TERMINAL = ("completed", "failed", "cancelled", "timed_out")
WORKFLOWS_READ_S = 30.0  # how long reading the stack's GET /api/workflows may take, each attempt
_MAX_RESULT_BYTES = 200_000_000
# How long one result image may take to arrive, whole: httpx's timeout is per read, so a server sending a few bytes
# now and then would otherwise hold the case, and the run and its report, for ever.
RESULT_FETCH_S = 120.0
MAX_CONCURRENCY = 256  # cases in flight at once; the CLI's --concurrency has the same bound
_MAX_JSON_BYTES = 1_000_000  # an API answer (queue/create, status) far past any real one is refused, not held
CREATE_ATTEMPTS = 4  # sends of one case's create, all with its key, while its outcome stays unknown
WAIT_NOTE_EVERY_S = 60.0  # how often a case says its job is still unfinished
RETRY_BACKOFF_S = 0.5  # the first wait before a create is sent again; doubles each time (0.5, 1, 2 s)
MAX_POLL_BACKOFF_S = 5.0  # the longest wait between status polls that failed on the way
# A 502/503 from queue/create is documented as "RunPod never took it, the job is failed": it is an
# answer, not a lost one. Any other 5xx may come from after the job was made (or from Cloudflare).
_CREATE_ANSWERED_5XX = (502, 503)
# A 429 queue_full (the stack's api.max_jobs_in_flight reached: nothing was written, the key stays free) is sent
# again with its key after its Retry-After, within these bounds, until the case's limit: a PROD smoke run met by
# a busy queue used to fail its cases, and the promotion rolled PROD back from a good image.
QUEUE_FULL_WAIT_S = (1.0, 60.0)
# A create sent again after the wait needs this much of the case's time left to be answered: sent with less, it
# timed out, and the case failed saying "ReadTimeout" rather than that the stack stayed full.
QUEUE_FULL_MIN_LEFT_S = 1.0
# A 429 spend_limit_reached (the stack's api.daily_spend_limit_usd reached: nothing was written) lasts until 00:00
# UTC: waiting it out is no case's business, and failing the case blamed the image (a PROD smoke run at the limit
# ended smoke_failed and its promotion rolled PROD back from a good image). The run is "not run" instead.
SPEND_LIMIT_ADVICE = ("run it again after 00:00 UTC, or once api.daily_spend_limit_usd is raised and applied "
                      "(docs/RUNBOOK.md, \"Clients get 429 spend_limit_reached\")")


@dataclass(frozen=True)
class ApiAccess:
    """Where a stack's public API is and the bearer token to call it (never logged). `hold(image, suite)`, when the
    deployer gives one, is held by `verification.run_golden` for the whole run, its report and ledger entry
    included: it keeps every deploy of the stack out meanwhile, and refuses (before any case is sent) a stack that
    does not serve `image`, the image the run is bound to. `run_suite` itself takes no hold."""

    api_url: str
    token: str
    hold: Callable[[str | None, str], AbstractContextManager[object]] | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"ApiAccess(api_url={self.api_url!r}, token=<redacted>)"


@dataclass(frozen=True)
class SuiteTarget:
    """What a golden run is bound to: the stack and the image it served when the run started."""

    stack: str
    target: str
    image: str | None
    workflow_version: str
    thresholds: Thresholds


class RunInterrupted(GoldgateError):
    """The run was interrupted (Ctrl-C): a case in flight stops at its next wait instead of running to its limit."""


class SpendLimitReached(GoldgateError):
    """The stack refused a case's create 429 spend_limit_reached: it is at its daily spend limit, so no case can be
    judged there until 00:00 UTC. `run_suite` raises it once the cases already created have ended; it is no verdict
    on the image (verification.run_golden makes it a NothingRun)."""


class _SpendRefusal:
    """The first spend_limit_reached refusal of a run, shared by its cases: once set, no case sends a create."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.message: str | None = None

    def record(self, message: str) -> None:
        with self._lock:
            if self.message is None:
                self.message = message

    def check(self) -> None:
        """Raise _NotSent when an earlier create of the run was refused for the spend limit."""
        if self.message is not None:
            raise _NotSent("not sent: an earlier create of this run was refused for the stack's daily spend limit")


class _NotSent(GoldgateError):
    """A case whose create was not sent, or was refused, because the stack is at its daily spend limit."""


class Check:
    """Collects named pass/fail checks for one case."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def __call__(self, name: str, passed: bool, detail: str = "") -> bool:
        self.items.append({"name": name, "passed": bool(passed), "detail": detail})
        return bool(passed)

    @property
    def passed(self) -> bool:
        return bool(self.items) and all(i["passed"] for i in self.items)


def run_suite(cases: list[GoldenCase], access: ApiAccess, target: SuiteTarget, *, suite: str = "full",
              references_dir: Path = REFERENCES_DIR, update_references: bool = False,
              concurrency: int = 8, poll_s: float = 0.25,
              progress: Callable[[str], None] | None = None,
              image_now: Callable[[], str | None] | None = None,
              note_every_s: float = WAIT_NOTE_EVERY_S, cover_workflows: bool = True,
              accept_changed: Collection[str] = (), reports_dir: Path | None = None) -> dict[str, Any]:
    """Run every case at once (bounded by `concurrency`); returns the report (see report.py). `references_dir` left
    at its default is the target's own (`references/<target>`, see cases.references_for). `update_references` writes
    a case's render to its reference when there was none or the one it replaces is within the case's limits; one
    CHANGED beyond them is written only for a case `accept_changed` names (the operator looked at it), else the case
    fails saying so: a render broken by a graph change is never blessed by accident. A full run also reads the
    workflows the stack serves (GET /api/workflows, the image's own on either target) first: each must be run by a
    case of `cases`, or the run fails naming it, since a workflow no case runs reaches PROD untested
    (`cover_workflows=False` leaves that out: a run of one case that tests the runner itself, never the gate's).
    The same list gives each workflow's parameter types: a case giving an image parameter anything but a file
    (`{file: <name>}`, uploaded before its job is created) fails without a job. `reports_dir`: where the run's report
    goes (named in the commands its advice gives, when it is not the checkout's)."""
    if not cases:
        raise GoldgateError("no golden cases to run")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise GoldgateError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    # Refused before any job is sent (nothing billed, no reference written): the stack's per-case limit is the
    # ceiling a case may only lower, and two cases sharing a reference would race to write it.
    check_own_references(cases)
    check_latency_limits(cases, target.thresholds.golden_case_latency_s, target.stack)
    accepted = frozenset(accept_changed)
    if accepted and not update_references:
        raise GoldgateError("--accept-changed goes with --update-references: it names a case whose reference that run "
                            "may replace although the render CHANGED beyond the case's limits")
    strays = sorted(accepted - {case.id for case in cases})
    if strays:
        raise GoldgateError(f"--accept-changed {', '.join(strays[:5])}: no case of this run has that id (its cases: "
                            f"{', '.join(sorted(c.id for c in cases)[:20])}); nothing was run")
    references_dir = references_for(references_dir, target.target)
    other_image = _not_the_checkouts_build(target) if update_references else None
    if other_image and progress:
        progress(f"warning: {other_image}")
    started, t0 = now_rfc3339(), time.monotonic()
    stop = threading.Event()
    spend = _SpendRefusal()
    with api_client(access) as client:
        # Read before any case runs: what the stack serves while the run is bound to its image. A run that does not
        # check coverage reads it once, for the parameter types alone (not read: the service's 400s say it).
        covering = suite == "full" and cover_workflows
        listed, why = listed_workflows(client, stop, attempts=CREATE_ATTEMPTS if covering else 1)
        workflows = workflow_coverage(cases, None if listed is None else sorted(listed), why) if covering else None

        def one(case: GoldenCase) -> dict[str, Any]:
            result = run_case(client, access, case, target, references_dir=references_dir,
                              update_references=update_references, poll_s=poll_s, stop=stop,
                              note=progress, note_every_s=note_every_s, accept_changed=accepted,
                              other_image=other_image, advise_replacing=suite == "full",
                              parameters=None if listed is None else listed.get(case.workflow),
                              reports_dir=reports_dir, spend=spend)
            if progress and result.get("not_run"):
                progress(f"{case.id}: not run ({result['not_run']})")
            elif progress and not stop.is_set():
                updated = [c["detail"] for c in result["checks"] if c["name"] == "reference_updated"]
                # A case that failed before its job's final status has no latency to give ("FAIL in - s"): why.
                took = (f"in {result['latency_s']} s" if result["latency_s"] is not None else
                        f"before its job's final status: {result['error']}")
                progress(f"{case.id}: {'pass' if result['passed'] else 'FAIL'} {took}"
                         + "".join(f"; reference: {u}" for u in updated))
            return result

        with ThreadPoolExecutor(max_workers=min(concurrency, len(cases))) as pool:
            try:
                results = list(pool.map(one, cases))
            except BaseException:
                # Ctrl-C: leaving the pool waits for every case in flight, which would otherwise poll on to its
                # latency limit (10 minutes by default) while the operator waits for the prompt.
                stop.set()
                raise
    if spend.message is not None:
        raise SpendLimitReached(_spend_limit_message(spend.message, results, target, update_references))
    wall = time.monotonic() - t0
    image_after = image_now() if image_now else target.image
    report = build_report(target, access.api_url, results, started=started, finished=now_rfc3339(),
                          wall_time_s=wall, suite=suite, image_after=image_after,
                          references_updated=update_references, workflows=workflows)
    report["references"] = references_compared(results, references_dir)
    return report


def _spend_limit_message(refused: str, results: list[dict[str, Any]], target: SuiteTarget,
                         update_references: bool) -> str:
    """Why a run met by the stack's daily spend limit judged nothing, quoting the service's refusal, with what the
    cases already created did and what to do."""
    created = [r for r in results if not r.get("not_run")]
    passed = sum(r["passed"] is True for r in created)
    ran = (f"; the {len(created)} created before it ran to their end ({passed} passed, {len(created) - passed} "
           "failed), not recorded" if created else "")
    rewritten = "; the references they rewrote stay rewritten" if update_references and created else ""
    # What it means and what to do before the service's words: the CLI cuts a long error line in its middle, here
    # the quote, which the line of the case it refused gave whole.
    return (f"{target.stack}'s daily spend limit was reached: no report was written, and the run is no verdict on "
            f"{target.image} ({len(results) - len(created)} of {len(results)} case(s) got no job, none sent after the "
            f"first refusal{ran}{rewritten}); {SPEND_LIMIT_ADVICE}; queue/create answered 429 {refused}")


def api_client(access: ApiAccess) -> httpx.Client:
    """A client of the stack's public API, as the golden runner calls it (its token, no redirects followed)."""
    headers = {"authorization": f"Bearer {access.token}", "user-agent": "goldgate-golden/1"}
    return httpx.Client(base_url=access.api_url, headers=headers, timeout=httpx.Timeout(30.0),
                        follow_redirects=False, verify=tls_context())


WORKER_SOURCE = REPO_ROOT / "images" / "worker"


def _not_the_checkouts_build(target: SuiteTarget, source: Path = WORKER_SOURCE) -> str | None:
    """Why references written now would be another image's renders than the checkout releases, or None: on the local
    target a stack's image is the snapshot of an images/worker tree (its digest is the tree's), so a STAGING still on
    an earlier build (the workflow edited since, not built and deployed again) is seen before its renders become the
    references, which the checkout's own build then fails (a dHash distance, with no word of why). The cloud's image
    digest is the registry's, which nothing here can compute from the checkout."""
    # imported here, as build.py does: the local image store is the local target's, not every golden run's
    from goldgate.local.image_store import REF_PREFIX, snapshot_digest

    if target.target != "local" or not isinstance(target.image, str) or not target.image.startswith(REF_PREFIX):
        return None
    try:
        built = REF_PREFIX + snapshot_digest(source) if (source / "handler.py").is_file() else None
    except (OSError, GoldgateError):  # a tree the build would refuse: the build says why, not this warning
        return None
    if built is None or built == target.image:
        return None
    return (f"{target.stack} runs {target.image}, but this checkout's images/worker builds {built} (changed since "
            f"that build): the references this run writes are renders of the image {target.stack} runs, not of the "
            f"one the checkout releases; to make them from the checkout, `goldgate build` (it makes {built}), then "
            f"`goldgate deploy {target.stack} --image {built}`, and run this again")


def served_workflows(client: httpx.Client, stop: threading.Event) -> tuple[list[str] | None, str | None]:
    """(the ids of the workflows the stack serves, None), or (None, why they could not be read). A read that fails on
    the way (no answer, a 5xx, a 429) is tried again, CREATE_ATTEMPTS times in all."""
    listed, why = listed_workflows(client, stop)
    return (None, why) if listed is None else (sorted(listed), None)


def listed_workflows(client: httpx.Client, stop: threading.Event,
                     attempts: int = CREATE_ATTEMPTS) -> tuple[dict[str, dict[str, str]] | None, str | None]:
    """({each workflow the stack serves: {its parameter: its type}}, None), or (None, why they could not be read). A
    read that fails on the way (no answer, a 5xx, a 429) is tried again, `attempts` times in all."""
    why = ""
    for attempt in range(1, attempts + 1):
        try:
            resp = bounded_answer(client, "GET", "/api/workflows", time.monotonic() + WORKFLOWS_READ_S, WORKFLOWS_READ_S)
        except httpx.TransportError as exc:
            why = _one_line(exc)
        except (httpx.HTTPError, GoldgateError) as exc:
            return None, _one_line(exc)
        else:
            if resp.status_code == 200:
                try:
                    listed = answer_json(resp).get("workflows")
                except GoldgateError as exc:
                    return None, str(exc)
                ids = [w.get("id") for w in listed if isinstance(w, dict)] if isinstance(listed, list) else None
                if ids is None or not all(isinstance(i, str) and i for i in ids):
                    return None, "it answered 200 without a list of workflows, each with its id"
                return {_printable(w["id"][:64]): _parameter_types(w.get("parameters"))
                        for w in listed if isinstance(w, dict)}, None
            why = f"it answered {resp.status_code}: {api_error_text(resp)}"
            if resp.status_code < 500 and resp.status_code != 429:
                return None, why
        if attempt < attempts:
            _pause(stop, RETRY_BACKOFF_S * 2 ** (attempt - 1))
    return None, f"{why} ({attempts} attempt{'' if attempts == 1 else 's'})"


def _parameter_types(parameters: Any) -> dict[str, str]:
    """A listed workflow's parameters as {name: type}; entries that are not a parameter are left out."""
    if not isinstance(parameters, list):
        return {}
    return {p["name"]: p["type"] for p in parameters
            if isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("type"), str)}


def workflow_coverage(cases: list[GoldenCase], served: list[str] | None, why: str | None) -> dict[str, Any]:
    """The report's `workflows`: what the stack serves and which of those no case of the run runs (`uncovered`);
    when they could not be read, `error` says why (and the run fails: nothing shows every one was tested)."""
    if served is None:
        return {"served": None, "uncovered": None, "error": why}
    run = {case.workflow for case in cases}
    return {"served": served, "uncovered": [w for w in served if w not in run]}


def references_compared(results: list[dict[str, Any]], references_dir: Path) -> dict[str, Any]:
    """Which references the renders were compared with: the directory and the sha256 of each file as it was read,
    so a reader (or the gate) can tell a run against the committed references from one against another directory
    (`--references-dir` holding the candidate's own renders would compare each render with itself)."""
    files: dict[str, str] = {}
    for case in results:
        for image in case.get("images") or []:
            name, sha = image.get("reference"), image.get("reference_sha256")
            if isinstance(name, str) and isinstance(sha, str):
                files[name] = sha
    # Inside the checkout: the path from its root, as committed (reports are committed, a runner's home is not).
    return {"dir": shown_dir(references_dir), "sha256": dict(sorted(files.items()))}


def run_case(client: httpx.Client, access: ApiAccess, case: GoldenCase, target: SuiteTarget, *,
             references_dir: Path, update_references: bool = False, poll_s: float = 0.25,
             stop: threading.Event | None = None, note: Callable[[str], None] | None = None,
             note_every_s: float = WAIT_NOTE_EVERY_S, accept_changed: Collection[str] = (),
             other_image: str | None = None, advise_replacing: bool = True,
             parameters: Mapping[str, str] | None = None, reports_dir: Path | None = None,
             spend: _SpendRefusal | None = None) -> dict[str, Any]:
    """Upload the case's input images, submit it, wait for a terminal status, fetch and check every image; `stop` set
    ends it early. `spend`: the run's first spend_limit_reached refusal; once there is one, the case sends no new
    create and its result says `not_run`. `parameters`: its workflow's parameter types as the stack lists them (None:
    not known). A job still unfinished is named on `note` every `note_every_s`, with how to recover it if its
    webhook was lost.
    `other_image`: why the stack's image is not the checkout's build (a reference written is said to be its).
    `advise_replacing`: a render unlike its reference names the command that replaces it (not in a smoke run: PROD's
    render failing the reference STAGING's passed is PROD's fault, never the reference's)."""
    stop = stop or threading.Event()
    check = Check()
    ceiling = target.thresholds.golden_case_latency_s
    limit = min(case.expect.max_latency_s or ceiling, ceiling)
    out: dict[str, Any] = {"id": case.id, "workflow_id": case.workflow, "smoke": case.smoke, "job_id": None,
                           "status": None, "latency_s": None, "max_latency_s": limit,
                           "worker_image_tag": None, "workflow_version": None, "images": [], "error": None}
    if case.input_files:
        out["input_files"] = {}
    wrong = _input_kinds(case, parameters)
    if wrong:
        out["error"] = wrong
        check("inputs", False, wrong)
        return {**out, "checks": check.items, "passed": False}
    t0 = time.monotonic()
    spend = spend or _SpendRefusal()
    try:
        waiting = _WaitNotes(case.id, target, note, note_every_s)
        status = _submit_and_wait(client, case, limit, poll_s, out, stop, waiting, check, spend)
    except _NotSent as exc:
        out["error"] = out["not_run"] = str(exc)
        check("created", False, out["error"])
        return {**out, "checks": check.items, "passed": False}
    except (httpx.HTTPError, GoldgateError) as exc:
        out["error"] = _one_line(exc)
        # Named for what failed: with no job id, its create (or an input's upload before it) was refused or lost.
        check("completed" if out["job_id"] else "created", False, out["error"])
        return {**out, "checks": check.items, "passed": False}
    latency = time.monotonic() - t0
    out["latency_s"] = round(latency, 3)
    out["status"] = status.get("status")
    out["worker_image_tag"] = status.get("worker_image_tag")
    out["workflow_version"] = status.get("workflow_version")
    out["error"] = _brief(status.get("error"))
    completed = check("completed", status.get("status") == "completed",
                      f"status {status.get('status')}" + (f": {out['error']}" if out["error"] else ""))
    check("latency", latency <= limit, f"{latency:.2f} s (max {limit:g} s)")
    tag = status.get("worker_image_tag")
    if target.image:
        # The job must have run on the image the report is bound to, not on a stale worker; a job that does
        # not name its image proves nothing about the one the stack runs.
        check("worker_image", tag == target.image,
              f"job ran on {tag}" if isinstance(tag, str) and tag else "the job did not say which image ran it")
    if completed:
        _check_results(client, access, case, status.get("results") or [], check, out,
                       _References(references_dir, update_references, target.stack, target.target,
                                   frozenset(accept_changed), other_image is not None, advise_replacing,
                                   reports_dir), stop)
    return {**out, "checks": check.items, "passed": check.passed}


def _submit_and_wait(client: httpx.Client, case: GoldenCase, limit: float, poll_s: float,
                     out: dict[str, Any], stop: threading.Event, waiting: _WaitNotes,
                     check: Check | None = None, spend: _SpendRefusal | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    spend = spend or _SpendRefusal()
    spend.check()  # nothing is uploaded for a create that will not be sent
    inputs = dict(case.inputs)
    for name, file in sorted(case.input_files.items()):
        inputs[name] = _upload_input(client, name, file, deadline, limit, stop, out, check)
    job_id = _create(client, case, deadline, limit, stop, inputs, spend)
    out["job_id"] = job_id
    return _wait(client, job_id, deadline, limit, poll_s, stop, waiting)


def _input_kinds(case: GoldenCase, parameters: Mapping[str, str] | None) -> str | None:
    """Why the case gives a parameter of its workflow the wrong kind of value, or None: an image parameter takes a
    file the run uploads, never a string (an uploaded key is deleted after the retention period, and a file name
    would only be refused by the API), and a file goes only to an image parameter. None when the types are not
    known (the stack's list of workflows was not read): the service's 400 names such a value then."""
    if not parameters:
        return None
    for name in sorted(case.inputs):
        kind = parameters.get(name)
        if kind == "image" and name not in case.input_files:
            return (f"{case.source}: inputs.{name}: {case.workflow}'s parameter {name} is an image: give it as "
                    f"{{file: <name>}}, a PNG, JPEG or WebP file in {shown_dir(case.inputs_dir)}/ that the run "
                    f"uploads (POST /api/inputs) before it creates the job, not as "
                    f"{_printable(repr(case.inputs[name])[:80])}; "
                    "no job was created")
        if name in case.input_files and kind is not None and kind != "image":
            return (f"{case.source}: inputs.{name}: a file is for an image parameter, and {case.workflow}'s "
                    f"parameter {name} is of type {_printable(kind[:32])}: give it a value of that type; no job "
                    "was created")
    return None


def _upload_input(client: httpx.Client, name: str, file: InputFile, deadline: float, limit: float,
                  stop: threading.Event, out: dict[str, Any], check: Check | None) -> str:
    """The key of the case's input image `name`, uploaded by POST /api/inputs (its Content-Type from its magic
    bytes), recorded in the report's `input_files` by file and sha256. An upload whose answer is lost (no answer, a
    5xx, a 429) is sent again: the same bytes uploaded twice are two objects, which the retention period deletes."""
    try:
        with file.path.open("rb") as fh:
            data = fh.read(file.bytes + 1)
    except OSError as exc:
        raise GoldgateError(f"inputs.{name}: cannot read {file.path} ({exc.strerror or exc})") from None
    sha = hashlib.sha256(data).hexdigest()
    if sha != file.sha256:
        raise GoldgateError(f"inputs.{name}: {file.path} changed since the cases were read (sha256 {sha[:16]}..., "
                            f"was {file.sha256[:16]}...): run the golden tests again")
    record: dict[str, Any] = {"file": shown_dir(file.path), "sha256": file.sha256, "bytes": file.bytes,
                              "content_type": file.content_type, "key": None}
    out.setdefault("input_files", {})[name] = record
    attempt = 0
    while True:
        _pause(stop, 0)
        try:
            resp = bounded_answer(client, "POST", "/api/inputs", deadline, limit, content=data,
                           headers={"content-type": file.content_type})
        except httpx.TransportError as exc:
            lost = _one_line(exc)
        else:
            if resp.status_code < 500 and resp.status_code != 429:
                break
            lost = f"answered {resp.status_code}: {api_error_text(resp)}"
        attempt += 1
        wait = RETRY_BACKOFF_S * 2 ** (attempt - 1)
        if attempt == CREATE_ATTEMPTS or time.monotonic() + wait > deadline:
            raise GoldgateError(f"inputs.{name}: POST /api/inputs of {file.name} {lost} ({attempt} attempt(s)); no "
                                "job was created")
        _pause(stop, wait)
    if resp.status_code != 201:
        raise GoldgateError(f"inputs.{name}: POST /api/inputs of {file.name} answered {resp.status_code}: "
                            f"{api_error_text(resp)}; no job was created")
    answer = answer_json(resp)
    key, stored = answer.get("key"), answer.get("sha256")
    if not isinstance(key, str) or not INPUT_KEY.match(key):  # what queue/create takes for an image parameter
        raise GoldgateError(f"inputs.{name}: POST /api/inputs answered 201 without a key of the form "
                            f"inputs/<32 hex>.<png|jpg|webp> (got {_printable(repr(key)[:80])}); no job was created")
    if isinstance(stored, str) and stored.lower() != file.sha256:
        raise GoldgateError(f"inputs.{name}: the API stored {file.name} with sha256 {_printable(stored[:16])}..., the "
                            f"file's is {file.sha256[:16]}...: it stored other bytes than were sent; no job was "
                            "created")
    record["key"] = key
    if check is not None:
        check(f"inputs.{name}", True, f"uploaded {record['file']} ({file.content_type}, {file.bytes} bytes, sha256 "
                                      f"{file.sha256[:16]}...) as {key}")
    return key


def _pause(stop: threading.Event, seconds: float) -> None:
    """Wait `seconds`, unless the run is interrupted meanwhile: then this case ends at once."""
    if stop.wait(seconds):
        raise RunInterrupted("the golden run was interrupted")


def _create(client: httpx.Client, case: GoldenCase, deadline: float, limit: float, stop: threading.Event,
            inputs: Mapping[str, Any] | None = None, spend: _SpendRefusal | None = None) -> str:
    """The case's job id. A create whose outcome is unknown (no answer, or a 5xx other than 502/503), or that
    the service answers 409 idempotency_key_busy, is sent again with the same key, so the service answers the
    job the lost one made instead of a second. One answered 429 queue_full is sent again after its Retry-After,
    until the case's limit. One answered 429 spend_limit_reached is recorded in `spend` and raises _NotSent: no
    create of the run is sent after it. `inputs`: the case's, with each input image's uploaded key in its place."""
    spend = spend or _SpendRefusal()
    body = {"workflow_id": case.workflow, "inputs": dict(case.inputs if inputs is None else inputs)}
    headers = {"idempotency-key": str(uuid.uuid4())}
    attempt = 0  # sends whose outcome was unknown (a 429 queue_full is an answer: nothing was written)
    while True:
        _pause(stop, 0)  # a case the interrupted run had not sent yet is not sent (nor billed)
        if attempt == 0:
            # Nor a new create of a run the stack refused for its spend limit (a queue_full wait ends here too). One
            # whose outcome is unknown is sent again all the same: if it was taken, its retry is answered its job.
            spend.check()
        try:
            resp = bounded_answer(client, "POST", "/api/queue/create", deadline, limit, json=body, headers=headers)
        except httpx.TransportError as exc:
            lost = _one_line(exc)
        else:
            if resp.status_code == 429 and api_error_text(resp).startswith("spend_limit_reached:"):
                refused = api_error_text(resp, SPEND_MESSAGE_CHARS)
                spend.record(refused)
                raise _NotSent(f"queue/create answered 429 {refused}; no job was created")
            if resp.status_code == 429 and api_error_text(resp).startswith("queue_full:"):
                wait = _retry_after_s(resp)
                if time.monotonic() + wait + QUEUE_FULL_MIN_LEFT_S > deadline:
                    raise GoldgateError(f"queue/create answered 429: {api_error_text(resp)} (the stack stayed full "
                                        f"until too little of this case's limit, {limit:g} s, was left to try "
                                        "again; no job was created for it)")
                _pause(stop, wait)
                continue  # not an attempt whose outcome is unknown: nothing was written
            busy = resp.status_code == 409 and api_error_text(resp).startswith("idempotency_key_busy:")
            if not busy and (resp.status_code < 500 or resp.status_code in _CREATE_ANSWERED_5XX):
                break
            # the outcome is unknown, or the service asks for a retry with the key (a request with it failed
            # while this one was being answered)
            lost = f"queue/create answered {resp.status_code}: {api_error_text(resp)}"
        attempt += 1
        wait = RETRY_BACKOFF_S * 2 ** (attempt - 1)
        if attempt == CREATE_ATTEMPTS or time.monotonic() + wait > deadline:
            raise GoldgateError(f"{lost} ({attempt} attempt(s), all with the same Idempotency-Key)")
        _pause(stop, wait)
    if resp.status_code != 202:
        refused = f"queue/create answered {resp.status_code}: {api_error_text(resp)}"
        if api_error_text(resp).startswith("unknown_workflow:"):
            refused += f"; {_unserved(case.workflow)}"
        raise GoldgateError(f"{refused}; no job was created")
    job_id = answer_json(resp).get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise GoldgateError("queue/create answered 202 without a job_id")
    return job_id


@dataclass
class _WaitNotes:
    """Says, every `every_s`, that a case's job is still unfinished: a lost webhook otherwise leaves the run silent
    until the case's limit (10 minutes by default), with no word of the recovery that settles it."""

    case_id: str
    target: SuiteTarget
    note: Callable[[str], None] | None
    every_s: float
    next_at: float = 0.0

    def __call__(self, job_id: str, state: str | None, waited_s: float, limit: float) -> None:
        if self.note is None or waited_s < (self.next_at or self.every_s):
            return
        self.next_at = waited_s + self.every_s
        local = self.target.target == "local"
        how = (f"goldgate recover {job_id} --stack {self.target.stack}" if local
               else f"POST /api/admin/recover/{job_id} on {self.target.stack}'s API")
        # A job no worker takes (each exits at start, preflight_failed) waits just as a lost webhook's does, and
        # is the likelier cause while it is still queued: recovering it finds nothing lost.
        workers = (f"`goldgate status {self.target.stack}` (worker exits)" if local else
                   f"{self.target.stack}'s RunPod endpoint (its workers' exits and logs)")
        self.note(f"{self.case_id}: job {job_id} still {state or 'without a status'} after {waited_s:.0f} s "
                  f"(limit {limit:g} s); if no worker takes it, see {workers}; if its webhook was lost: {how}")


def _wait(client: httpx.Client, job_id: str, deadline: float, limit: float, poll_s: float,
          stop: threading.Event, waiting: _WaitNotes | None = None) -> dict[str, Any]:
    """The job's terminal status. A poll that fails on the way (no answer, a 5xx, a 429) is retried with a
    doubling wait up to MAX_POLL_BACKOFF_S: polling is a read, and the job runs on whether we look or not."""
    state, trouble, wait, cut_off = None, None, poll_s, False
    while True:
        try:
            resp = bounded_answer(client, "GET", f"/api/status/{job_id}", deadline, limit)
        except httpx.TimeoutException as exc:
            # A poll cut off by the case's deadline tells nothing new: an earlier poll's failure stays the reason.
            cut_off = trouble is not None and time.monotonic() >= deadline
            if not cut_off:
                trouble = _one_line(exc)
        except httpx.TransportError as exc:
            trouble = _one_line(exc)
        else:
            if resp.status_code == 200:
                status = answer_json(resp)
                if status.get("status") in TERMINAL:
                    return status
                state, trouble = status.get("status"), None
                if waiting is not None:
                    waiting(job_id, state, limit - (deadline - time.monotonic()), limit)
            elif resp.status_code >= 500 or resp.status_code == 429:
                trouble = f"answered {resp.status_code}: {api_error_text(resp)}"
            else:
                raise GoldgateError(f"status/{job_id} answered {resp.status_code}: {api_error_text(resp)}")
        wait = poll_s if trouble is None else min(MAX_POLL_BACKOFF_S, max(RETRY_BACKOFF_S, wait * 2))
        # After a failed poll, one that could only start past the limit is not made: the reason is this one.
        if time.monotonic() + (wait if trouble else 0.0) > deadline:
            last = (f"; a poll failed: {trouble} (the last was cut off by the limit)" if cut_off
                    else f"; the last poll failed: {trouble}" if trouble else "")
            raise GoldgateError(f"job {job_id} still {state or 'without a status'} after {limit:g} s "
                                f"(the case's latency limit){last}")
        _pause(stop, wait)


@dataclass(frozen=True)
class _References:
    """Where a run's references are, whether it rewrites them, and the stack and target it runs on (its advice names
    them)."""

    directory: Path
    update: bool
    stack: str
    target: str = "local"
    accept_changed: frozenset[str] = frozenset()
    other_image: bool = False  # the stack's image is not the checkout's build (_not_the_checkouts_build)
    advise_replacing: bool = True  # a failed comparison names the command that replaces the reference
    reports_dir: Path | None = None  # where the run's report goes (--reports-dir); None: the checkout's

    def create_command(self, case: GoldenCase | None = None, accept: bool = False) -> str:
        """The command that writes a missing reference, as the operator would type it for this very run: on the
        cloud target with `--target cloud` (without it, the render would be another target's, written to its
        references). With `case`, for that case alone (`--case`, and `--cases-dir` when its file is not in the
        checkout's cases/); `accept`: replacing its reference although it CHANGED beyond the case's limits. The
        run's own `--references-dir` and `--reports-dir` are repeated, so its report lands where this run's did."""
        command = f"goldgate golden {self.stack} --update-references" + (
            "" if self.target == "local" else f" --target {self.target}")
        if case is not None:
            where = Path(case.source).parent if case.source else None
            if where is not None and where.resolve() != (GOLDEN_DIR / "cases").resolve():
                command += f" --cases-dir {shlex.quote(str(where))}"
            command += f" --case {case.id}" + (f" --accept-changed {case.id}" if accept else "")
        if self.directory.resolve() != references_for(REFERENCES_DIR, self.target).resolve():
            command += f" --references-dir {shlex.quote(str(self.directory))}"
        if self.reports_dir is not None and self.reports_dir.resolve() != REPORTS_DIR.resolve():
            command += f" --reports-dir {shlex.quote(str(self.reports_dir))}"
        return command


def _check_results(client: httpx.Client, access: ApiAccess, case: GoldenCase, results: Any, check: Check,
                   out: dict[str, Any], references: _References, stop: threading.Event) -> None:
    exp = case.expect
    if not isinstance(results, list):
        check("image_count", False, f"results is not a list ({type(results).__name__}), expected {exp.images} image(s)")
        return
    check("image_count", len(results) == exp.images, f"{len(results)} image(s), expected {exp.images}")
    # The count has failed the case already: results past the expected ones are not fetched (a status listing
    # thousands would hold the run for as many downloads).
    seen: dict[str, int] = {}   # sha256 of each image fetched -> its index
    for index, item in enumerate(results[:exp.images]):
        if stop.is_set():   # interrupted: nothing more is fetched, and no reference is written after Ctrl-C
            check("interrupted", False, "the golden run was interrupted")
            return
        name = f"image[{index}]"
        if not isinstance(item, dict):
            check(name, False, "result entry is not an object")
            continue
        try:
            data, content_type = _fetch(client, access, item)
        except (httpx.HTTPError, GoldgateError) as exc:
            check(f"{name}.fetch", False, _one_line(exc))
            continue
        facts_out: dict[str, Any] = {"key": item.get("key"), "content_type": content_type, "bytes": len(data)}
        out["images"].append(facts_out)
        check(f"{name}.content_type", content_type == exp.content_type,
              f"{content_type} (expected {exp.content_type})")
        check(f"{name}.size", exp.min_bytes <= len(data) <= exp.max_bytes,
              f"{len(data)} bytes (allowed {exp.min_bytes}..{exp.max_bytes})")
        reported = item.get("bytes")
        if isinstance(reported, int):
            check(f"{name}.bytes_match", reported == len(data), f"status says {reported}, got {len(data)}")
        _check_sha256(check, name, item.get("sha256"), data)
        # Every image of a batch is a render of its own (each has its own noise): one listed twice, or uploaded
        # twice under two keys, would make up the count with a render the case never got.
        same = seen.setdefault(hashlib.sha256(data).hexdigest(), index)
        if same != index:
            check(f"{name}.distinct", False, f"the same bytes as image[{same}]: the job returned one render twice, "
                                             f"not {exp.images} renders")
        try:
            facts = inspect_image(data)
        except ImageUnreadable as exc:
            check(f"{name}.decode", False, str(exc))
            continue
        # The bytes must be the format the case expects, whatever the header says: a JPEG served as image/png
        # is saved as a .png that is not one.
        check(f"{name}.format", facts.mime == exp.content_type,
              f"the bytes are {facts.format}" + (f" ({facts.mime})" if facts.mime else "")
              + f" (expected {exp.content_type})")
        facts_out.update(width=facts.width, height=facts.height, dhash=facts.dhash)
        if exp.width is not None or exp.height is not None:
            check(f"{name}.dimensions", (exp.width in (None, facts.width)) and (exp.height in (None, facts.height)),
                  f"{facts.width}x{facts.height} (expected {exp.width or '*'}x{exp.height or '*'})")
        if index == 0 and not stop.is_set():
            _check_reference(case, data, facts, check, facts_out, references)


def _check_sha256(check: Check, name: str, recorded: Any, data: bytes) -> None:
    """The image served must be the very one the worker stored and described: the service checks only an object's
    size, so this is the one end-to-end check that the API hands out what was rendered (not another job's object,
    or one rewritten in the bucket). A status without a sha256 (the service stores none that is malformed) is
    not checked."""
    if not isinstance(recorded, str) or len(recorded) != 64:
        return
    served = hashlib.sha256(data).hexdigest()
    check(f"{name}.sha256_match", served == recorded.lower(),
          f"sha256 {served[:16]}... as the status says" if served == recorded.lower() else
          f"status says sha256 {_printable(recorded[:16])}..., the image served has {served[:16]}...: the API serves "
          "another object than the worker stored")


def _check_reference(case: GoldenCase, data: bytes, facts: ImageFacts, check: Check, facts_out: dict[str, Any],
                     references: _References) -> None:
    references_dir = references.directory
    ref_path = references_dir / case.reference_name
    if references.update:
        _update_reference(case, ref_path, data, facts, check, facts_out, references)
    try:
        ref_bytes = _read_reference(ref_path)
    except FileNotFoundError:
        # A new case is the usual cause: its reference is made by a run of that case alone (`--case`), which runs
        # and writes nothing else ("To add a case" in scripts/golden-tests/README.md).
        # No reference at all in the directory: the first run on this target (docs/CLOUD.md), which makes them all.
        first = not any(references_dir.glob("*.png"))
        alone = " (the first run on this target: no case has a reference yet; one run makes them all)" if first \
            else " (a new case?)"
        command = references.create_command(None if first else case)
        check("perceptual_hash", False, f"no reference image {ref_path.name} in {references_dir}{alone}; create it "
                                        f"deliberately with `{command}`")
        return
    except (OSError, ImageUnreadable) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        check("perceptual_hash", False, f"reference {ref_path.name}: cannot read it ({detail})")
        return
    # The file compared with, as it was read: the report says which references it vouches against.
    facts_out.update(reference=ref_path.name, reference_sha256=hashlib.sha256(ref_bytes).hexdigest())
    try:
        ref = inspect_image(ref_bytes)
    except ImageUnreadable as exc:
        check("perceptual_hash", False, f"reference {ref_path.name}: {exc}")
        return
    # dHash and the colour thumbnail are made from the image shrunk to 9x8 and 8x8: a render at another size
    # (a workflow that lost its width/height input) would match a reference of the same picture at any size.
    distance = hamming(facts.dhash, ref.dhash)
    colors = round(color_distance(facts, ref), 2)
    facts_out.update(hash_distance=distance, color_distance=colors)
    comparisons = [
        ("reference_dimensions", (facts.width, facts.height) == (ref.width, ref.height),
         f"{facts.width}x{facts.height}, the reference {ref_path.name} is {ref.width}x{ref.height}"),
        ("perceptual_hash", distance <= case.expect.max_hash_distance,
         f"dHash distance {distance} to {ref_path.name} (max {case.expect.max_hash_distance})"),
        ("color", colors <= case.expect.max_color_distance,
         f"mean colour difference {colors:g} to {ref_path.name} (max {case.expect.max_color_distance})")]
    # a run rewriting references says what to do on its reference_updated line; a smoke run never advises it
    advised = references.update or not references.advise_replacing
    if not all(passed for _name, passed, _detail in comparisons):
        _show_both(facts_out, data, ref_bytes)
    for name, passed, detail in comparisons:
        if not passed and not advised:
            # The numbers alone leave the author guessing: a render changed on purpose (a new default, graph or
            # model), one broken, or a reference made on another image (a stack not yet on the checkout's build).
            advised = True
            detail += (f"; look at this render and {ref_path.name} (the run's HTML page): if the change is "
                       f"intended, replace the reference with `{references.create_command(case, accept=True)}` "
                       "(on the stack running the build you release), commit it, and run the golden tests again; "
                       "if not, the image renders this case wrong")
        check(name, passed, detail)


def _update_reference(case: GoldenCase, ref_path: Path, data: bytes, facts: ImageFacts, check: Check,
                      facts_out: dict[str, Any], references: _References) -> None:
    # A render that failed a check already made (a stale worker image, wrong dimensions, too slow) would become
    # what every later run is compared with; the report fails the case either way, the reference stays as it was.
    if not check.passed:
        check("reference_updated", False, f"{ref_path.name} left as it was: this render failed the checks above")
        return
    replaced, within = _replaced_reference(case, ref_path, facts, facts_out)
    if not within and case.id not in references.accept_changed:
        # A graph change that broke the render would otherwise become the reference with no one looking: the case
        # is then compared with the reference as it was (and fails), and the operator names it to accept it.
        try:
            _show_both(facts_out, data, _read_reference(ref_path))
        except (OSError, ImageUnreadable):
            _show_both(facts_out, data, None)
        check("reference_updated", False,
              f"{ref_path.name} left as it was: {replaced}; look at this render (the run's HTML page) and, if it is "
              f"right, replace the reference with `{references.create_command(case, accept=True)}`")
        return
    if not within:
        replaced += " (accepted by --accept-changed)"
    try:
        ref_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(ref_path, data)
    except OSError as exc:
        check("reference_updated", False, f"cannot write {ref_path.name}: {exc.strerror or exc}")
        return
    stale = (f"; a render of {references.stack}'s image, which is not this checkout's build (the warning above)"
             if references.other_image else "")
    check("reference_updated", True, f"wrote {ref_path.name} ({replaced}){stale}")


def _replaced_reference(case: GoldenCase, ref_path: Path, facts: ImageFacts,
                        facts_out: dict[str, Any]) -> tuple[str, bool]:
    """How far the reference about to be replaced is from the render replacing it, and whether that is within the
    case's limits (a new reference is). Once written, the render is compared with itself, so this is the only word on
    which references really moved: the ones a reviewer must look at before committing (on a GPU every render differs
    a little, so every file changes). One of another size is not within them; one that cannot be read is replaced as
    a missing one is made (there is nothing known-good to keep)."""
    try:
        old_bytes = _read_reference(ref_path)
        old = inspect_image(old_bytes)
    except FileNotFoundError:
        return "a new reference: there was none", True
    except (OSError, ImageUnreadable):
        # a committed file that no longer reads (a failed LFS or merge checkout, a disk fault) is named, as a CHANGED one
        return "replacing one that could not be read (CHANGED beyond the case's limits; check it by eye)", False
    distance, colors = hamming(facts.dhash, old.dhash), round(color_distance(facts, old), 2)
    facts_out["replaced_reference"] = {"sha256": hashlib.sha256(old_bytes).hexdigest(), "hash_distance": distance,
                                       "color_distance": colors}
    exp = case.expect
    same_size = (facts.width, facts.height) == (old.width, old.height)
    within = distance <= exp.max_hash_distance and colors <= exp.max_color_distance and same_size
    size = "" if same_size else f", {old.width}x{old.height} where this render is {facts.width}x{facts.height}"
    return (f"the one it replaces is dHash distance {distance} (max {exp.max_hash_distance}), mean colour difference "
            f"{colors:g} (max {exp.max_color_distance}){size} from this render: "
            + ("within the case's limits" if within else "CHANGED beyond the case's limits; check it by eye")), within


def _show_both(facts_out: dict[str, Any], render: bytes, reference: bytes | None) -> None:
    """Previews of a render unlike its reference, for the run's HTML page: the advice is to look at both, and the
    page showed only their numbers (the render's own URL needs the API's token, and expires)."""
    facts_out["render_preview"] = preview(render)
    facts_out["reference_preview"] = preview(reference) if reference is not None else None


def _read_reference(path: Path) -> bytes:
    """The reference image's bytes; FileNotFoundError if there is none. Read no further than a render may be:
    a reference replaced by something huge (or a link to a device) must not fill the runner's memory."""
    if path.exists() and not path.is_file():
        raise ImageUnreadable("not a regular file")
    with path.open("rb") as fh:
        data = fh.read(_MAX_RESULT_BYTES + 1)
    if len(data) > _MAX_RESULT_BYTES:
        raise ImageUnreadable(f"larger than {_MAX_RESULT_BYTES} bytes")
    return data


def same_origin(url: str, api_url: str) -> bool:
    """Whether `url` (absolute) is on the API's own origin: the bearer token goes only there, never to another host
    a result URL names (a status answer is the API's word, but a URL in it is still where a credential would go)."""
    return urlsplit(url)[:2] == urlsplit(api_url)[:2]


def _fetch(client: httpx.Client, access: ApiAccess, item: dict[str, Any]) -> tuple[bytes, str]:
    url = item.get("url")
    key = item.get("key")
    if isinstance(url, str) and url:
        absolute = urljoin(access.api_url.rstrip("/") + "/", url)
    elif isinstance(key, str) and key:
        absolute = urljoin(access.api_url.rstrip("/") + "/", f"/api/result/{key}")
    else:
        raise GoldgateError("result has neither url nor key")
    opener = client.stream if same_origin(absolute, access.api_url) else httpx.stream
    deadline = time.monotonic() + RESULT_FETCH_S
    with opener("GET", absolute, timeout=min(30.0, RESULT_FETCH_S)) as resp:
        if resp.status_code != 200:
            resp.read()
            raise GoldgateError(f"GET result answered {resp.status_code}: {api_error_text(resp)}")
        chunks, total = [], 0
        for chunk in resp.iter_bytes():
            total += len(chunk)
            if total > _MAX_RESULT_BYTES:
                raise GoldgateError(f"result is larger than {_MAX_RESULT_BYTES} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise GoldgateError(f"GET result was still arriving after {RESULT_FETCH_S:g} s ({total} bytes so "
                                    "far): the stack serves its results too slowly")
        content_type = resp.headers.get("content-type", "").split(";")[0].strip()
    return b"".join(chunks), content_type


_LATE_S = 1.0  # how long after a case's deadline the rest of an answer that has begun arriving is still read


def bounded_answer(client: httpx.Client, method: str, path: str, deadline: float, limit: float,
            **kwargs: Any) -> httpx.Response:
    """One call to our API, read whole but bounded: at most _MAX_JSON_BYTES, and given up at the case's
    deadline (httpx's timeout is per read, so a server sending a byte now and then would never time out)."""
    where = path.lstrip("/").removeprefix("api/")
    timeout = max(0.1, min(30.0, deadline - time.monotonic()))
    with client.stream(method, path, timeout=timeout, **kwargs) as resp:
        chunks, total = [], 0
        for chunk in resp.iter_bytes():
            # An answer that lands just past the deadline may be whole (a 500 on a slow machine, in one chunk or
            # a few): it is read. Only a server still sending _LATE_S after the deadline is still answering.
            if chunks and time.monotonic() > deadline + _LATE_S:
                raise GoldgateError(f"{where} was still answering after the case's latency limit ({limit:g} s)")
            total += len(chunk)
            if total > _MAX_JSON_BYTES:
                raise GoldgateError(f"{where} answered with a body larger than {_MAX_JSON_BYTES} bytes")
            chunks.append(chunk)
    # iter_bytes has already undone any Content-Encoding (Cloudflare compresses): the copy must not again
    headers = [(k, v) for k, v in resp.headers.items() if k.lower() not in ("content-encoding", "content-length")]
    return httpx.Response(resp.status_code, headers=headers, content=b"".join(chunks), request=resp.request)


def answer_json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        raise GoldgateError(f"{resp.request.url.path} answered {resp.status_code} with a body that is not JSON") \
            from None
    if not isinstance(body, dict):
        raise GoldgateError(f"{resp.request.url.path} answered with JSON that is not an object")
    return body


def _retry_after_s(resp: httpx.Response) -> float:
    """The seconds a 429's Retry-After asks for (delta-seconds), within QUEUE_FULL_WAIT_S; its upper bound when
    the header is missing or no number."""
    low, high = QUEUE_FULL_WAIT_S
    try:
        seconds = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return high
    return min(max(seconds, low), high) if math.isfinite(seconds) else high


# The service's spend_limit_reached message is quoted whole (spend, limit, when creates are taken again): ~450 chars.
SPEND_MESSAGE_CHARS = 800


def api_error_text(resp: httpx.Response, chars: int = 300) -> str:
    try:
        err = resp.json().get("error")
        if isinstance(err, dict):
            return _printable(" ".join(f"{err.get('code')}: {err.get('message')}".split())[:chars])
    except (ValueError, AttributeError):
        pass
    return _printable(resp.text[:200].replace("\n", " "))


# How much of a failed job's error the report keeps: the worker sends at most 2,000 characters, and what to do
# usually comes at the end of its first aid (the directories searched, what the local target cannot emulate).
JOB_ERROR_CHARS = 1000


def _brief(error: Any) -> str | None:
    """A job's error in one readable line: the runpod SDK wraps exceptions as JSON with a traceback."""
    if error is None:
        return None
    text = error if isinstance(error, str) else json.dumps(error)
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("error_message"):
        text = f"{parsed.get('error_type', 'error')}: {parsed['error_message']}"
    text = " ".join(text.split())
    cut = f" ... ({len(text)} characters)" if len(text) > JOB_ERROR_CHARS else ""
    return _printable(text[:JOB_ERROR_CHARS] + cut)


def _printable(text: str) -> str:
    """Words from the worker or the API as they reach a terminal and the report: a control or format character
    (an ANSI escape that clears the screen, a carriage return or a bidi override that disguises the line) is
    shown as its escape instead of acting."""
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)


def _one_line(exc: BaseException) -> str:
    """An error as the CLI says it (goldgate's own in its words, any other with its type named), in one line."""
    return (describe(exc).splitlines() or [type(exc).__name__])[0][:500]


def _unserved(workflow: str) -> str:
    """What to do about a case whose workflow the stack's image does not serve (queue/create's unknown_workflow): an
    image from before the workflow was added, which a build of this checkout serves, when the checkout has it."""
    shown = _printable(workflow[:64])
    if (REPO_ROOT / "images" / "worker" / "workflows" / f"{workflow}.json").is_file():
        return (f"the image the stack serves is from before workflow {shown} (a release from before that workflow): "
                "a build of this checkout serves it (`goldgate build`, then deploy that build and run this again)")
    return (f"no build of this checkout serves {shown} either (images/worker/workflows/ has no {shown}.json): fix "
            "the case's workflow, or add the workflow")
