"""`goldgate cancel --all-queued|--all-active --stack S`: a runaway client's jobs cancelled with one command. The ids
are read from the stack's database as `goldgate stuck` reads them (its SQLite read-only, or its D1: SELECTs only);
each job is cancelled through the stack's public API, `POST /api/cancel/<job_id>`, the route `goldgate cancel JOB`
takes, so the service's transition, log lines, metrics and RunPod /cancel call are a single cancel's.

Not RunPod's `POST /purge-queue`: it empties RunPod's queue without a word to goldgate's database, whose jobs would then
stay `queued` with no webhook ever coming for them."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from goldgate.cloudflare.d1 import D1Client
from goldgate.errors import GoldgateError
from goldgate.ops.fingerprint import open_stack_database
from goldgate.release.interrupt import how
from goldgate.spec import show

Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]

DEFAULT_LIMIT = 2_000   # about 4 minutes at RunPod's /cancel rate: a mistaken filter cannot run for an hour
QUEUED, ACTIVE = ("queued",), ("queued", "in_progress")
# What stops the most spend soonest: the jobs on a GPU now, then the oldest queued, which RunPod's FIFO queue hands to
# the next free worker; the newest would be reached last by RunPod too.
ORDER = "in progress first, then oldest first (the next a free worker would take)"
ORDER_QUEUED = "oldest first (the next a free worker would take)"  # --all-queued selects none in progress

# Outcomes of one job: cancelled (it is cancelled now), ended (it had ended otherwise: a webhook beat the cancel, or
# RunPod had already finished it), failed (named, with the line to retry it), not_sent (interrupted or stopped before
# it), selected (a preview: nothing was sent).
OUTCOMES = ("cancelled", "ended", "failed", "not_sent", "selected")
_TERMINAL = frozenset({"completed", "failed", "cancelled", "timed_out"})
# What the per-client counts call the jobs the API token created (no client name has parentheses).
API_TOKEN_JOBS = "(API token)"


@dataclass(frozen=True)
class Selection:
    """Which jobs: their statuses (QUEUED or ACTIVE), a workflow, a window of creation times (after inclusive, before
    exclusive, both normalized ISO 8601 UTC), and at most `limit` of them."""

    statuses: tuple[str, ...]
    workflow_id: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    limit: int = DEFAULT_LIMIT
    client: str | None = None  # the named client that created them (jobs.client, migration 0010)

    def describe(self) -> str:
        parts = [" or ".join(s.replace("_", " ") for s in self.statuses)]
        if self.client is not None:
            parts.append(f"client {self.client}")
        if self.workflow_id is not None:
            parts.append(f"workflow {self.workflow_id}")
        if self.created_after is not None:
            parts.append(f"created at or after {self.created_after}")
        if self.created_before is not None:
            parts.append(f"created before {self.created_before}")
        return ", ".join(parts)


def order(selection: Selection) -> str:
    """The order the selection's jobs are cancelled in, as said to the user."""
    return ORDER if "in_progress" in selection.statuses else ORDER_QUEUED


@dataclass(frozen=True)
class SelectedJob:
    id: str
    workflow_id: str
    status: str
    created_at: str
    client: str | None = None  # None: the API token's (or a database from before migration 0010)


@dataclass(frozen=True)
class Selected:
    jobs: list[SelectedJob]
    matched: int                  # every job the selection matches; `jobs` holds the first `limit` of them
    # With --client and nothing matched: whether any job of the database, ended or not, names that client (False:
    # likely a misspelt name, which would otherwise read as a runaway with nothing left to cancel); else None.
    client_seen: bool | None = None


def epoch_ms(iso: str) -> int:
    """A normalized ISO 8601 UTC time (service.metrics.normalize_since's form) as epoch milliseconds."""
    moment = datetime.fromisoformat(iso)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def select_local(path: Path, stack: str, selection: Selection) -> Selected:
    """The stack's own SQLite, opened read-only: the running service's writes go on."""
    if not path.is_file():
        raise GoldgateError(f"no database at {path}: stack {stack} was never brought up under this state dir "
                            f"(--home, GOLDGATE_HOME), so it has no job to cancel; check the state dir")
    conn = open_stack_database(path)
    try:
        return _select(lambda sql, params: [dict(r) for r in conn.execute(sql, tuple(params))], stack, selection,
                       where=str(path), migrate=f"`goldgate up {stack}` applies the migrations")
    except sqlite3.DatabaseError as exc:
        raise GoldgateError(f"reading {path} failed ({exc}): the stack's database file is damaged or not a "
                            "database; see docs/D1_DISASTER_RECOVERY.md") from None
    finally:
        conn.close()


def select_cloud(d1: D1Client, database_id: str, stack: str, selection: Selection) -> Selected:
    """The stack's D1 over the REST API: SELECTs only."""
    return _select(lambda sql, params: d1.query(database_id, sql, list(params)), stack, selection,
                   where=f"D1 {database_id}", migrate="check --database-id, or apply the migrations (`pulumi up`)")


def _select(query: Query, stack: str, selection: Selection, *, where: str, migrate: str) -> Selected:
    columns = {row["name"] for row in query("PRAGMA table_info(jobs)", ())}
    if not {"id", "stack", "workflow_id", "status", "created_at", "created_at_ms"} <= columns:
        raise GoldgateError(f"{where} has no jobs table goldgate made: it is not a migrated goldgate database "
                            f"({migrate})")
    # The partial index jobs_in_flight's own condition (migration 0007): only the unfinished jobs' entries are read,
    # never the finished ones' rows (D1 bills each row read).
    conditions = ["status IN ('queued', 'in_progress')"]
    if selection.statuses == QUEUED:
        conditions.append("status = 'queued'")
    if selection.client is not None and "client" not in columns:
        raise GoldgateError(f"{where} has no jobs.client column (migration 0010), so no job there names its client: "
                            f"{migrate}, or select without --client")
    params: list[Any] = []
    for sql, value in (("client = ?", selection.client), ("workflow_id = ?", selection.workflow_id),
                       ("created_at_ms >= ?", _ms(selection.created_after)),
                       ("created_at_ms < ?", _ms(selection.created_before))):
        if value is not None:
            params.append(value)
            conditions.append(sql.replace("?", f"?{len(params)}"))
    where_sql = " AND ".join(conditions)
    client = ", client" if "client" in columns else ""
    rows = query(f"SELECT id, stack, workflow_id, status, created_at{client} FROM jobs WHERE {where_sql} "
                 f"ORDER BY status = 'in_progress' DESC, created_at_ms, id LIMIT ?{len(params) + 1}",
                 (*params, selection.limit))
    other = next((r["stack"] for r in rows if r["stack"] != stack), None)
    if other is not None:  # its ids would be sent to this stack's API, which has no such job
        raise GoldgateError(f"{where} holds the jobs of stack {show(other)}, not of {stack}: check --database-id, "
                            "or cancel them as that stack")
    matched = int(query(f"SELECT COUNT(*) AS n FROM jobs WHERE {where_sql}", params)[0]["n"] or 0)
    jobs = [SelectedJob(str(r["id"]), str(r["workflow_id"]), str(r["status"]), str(r["created_at"]), r.get("client"))
            for r in rows]
    seen = None
    if selection.client is not None and not jobs and not matched:
        # a scan of jobs (no index on client): only when nothing matched, once per run
        seen = bool(query("SELECT 1 AS seen FROM jobs WHERE client = ?1 LIMIT 1", (selection.client,)))
    return Selected(jobs, max(matched, len(jobs)), seen)


def _ms(iso: str | None) -> int | None:
    return None if iso is None else epoch_ms(iso)


# -- sending ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one `POST /api/cancel/<job_id>` came to: an outcome (cancelled, ended, failed), `retry` for trouble that
    passes (a 5xx, a 429, a network error, a job still being submitted), or `fatal` when no cancel of this run can
    succeed (a refused token)."""

    outcome: str
    status: str | None
    reason: str
    message: str
    retry_after_s: float | None = None


Send = Callable[[str], Answer]
# Refusals no cancel changes but a recovery settles (goldgate recover, as `goldgate stuck` lists them): RunPod has no
# job under the id recorded (its ttl passed, or a local stack's stop ended its RunPod's queue), or no id was recorded.
# Their retry line is the recovery's: the same cancel again would be refused the same way.
SETTLED_BY_RECOVERY = frozenset({"unknown_runpod_job", "not_submitted"})
# The service answers a job its database has already ended without calling RunPod (service/cancel.py): such a send
# takes no place in RunPod's /cancel budget. Oldest first, the cancels meet the jobs the workers take from the same
# end of the queue, so while the jobs are short many answers are these.
_NO_RUNPOD_CALL = frozenset({"already_ended"})
# Answers worth another try: RunPod unreachable or rate limited (503), RunPod's refusal or non-cancel (502), a proxy's.
_RETRIED = frozenset({429, 500, 502, 503, 504})
_JOB_ID = re.compile(r"[0-9a-f]{32}")


def http_sender(client: httpx.Client) -> Send:
    """`POST /api/cancel/<job_id>` on `client` (the stack's API, its base URL and bearer token set), read into an
    Answer. The token is in the client's headers only: no message here quotes a request."""
    def send(job_id: str) -> Answer:
        if not _JOB_ID.fullmatch(job_id):  # a path segment of the URL: a row written by hand could name another route
            return Answer("failed", None, "invalid_job_id", f"{job_id[:80]!r} is not a job id the service made (32 "
                                                            "hex): nothing was sent")
        try:
            resp = client.post(f"/api/cancel/{job_id}")
        except httpx.HTTPError as exc:
            return Answer("retry", None, "network_error", f"the API did not answer: {exc or type(exc).__name__}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        if resp.status_code == 200:
            return _answered(body)
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = str(error.get("code") or f"http_{resp.status_code}")
        message = str(error.get("message") or resp.text[:200] or f"HTTP {resp.status_code}")
        told = f"{resp.status_code} {code}: {message}"
        retry_after = _retry_after_s(resp.headers.get("retry-after"))
        if resp.status_code in (401, 403):
            return Answer("fatal", None, code, f"{told}: the stack's API refused the token; no cancel of this run "
                                               "can succeed")
        if resp.status_code in _RETRIED or code == "submission_in_flight":
            return Answer("retry", None, code, told, retry_after)
        return Answer("failed", None, code, told)
    return send


def _answered(body: dict[str, Any]) -> Answer:
    status, reason = body.get("status"), str(body.get("reason") or "")
    message = str(body.get("message") or "")
    if status == "cancelled":  # by this request, or by a cancel a moment before it (another, or a lost answer's)
        return Answer("cancelled", status, reason, message)
    if status in _TERMINAL or reason == "runpod_already_finished":  # a webhook beat the cancel; no GPU spends on it
        return Answer("ended", str(status), reason, message)
    return Answer("failed", str(status), reason or "not_cancelled", message or f"the job is still {status}")


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds, or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdecimal():
        return float(text[:6])
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class Pace:
    """How the cancels are sent: a few at once, within RunPod's per-endpoint /cancel rate limit (100 per 10 s, as
    the local RunPod models it; clients' own cancels share it: a margin is left), each tried at most `attempts`
    times. A retry waits the answer's Retry-After (at most `max_wait_s`), else 1, 2, 4... seconds."""

    concurrency: int = 4
    attempts: int = 4
    per_window: int = 80
    window_s: float = 10.0
    max_wait_s: float = 60.0


class _Window:
    """At most `limit` sends in any `window_s`, shared by the sending threads."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.sent: deque[float] = deque()
        self.lock = threading.Lock()

    def take(self, stop: threading.Event) -> float | None:
        """Wait for a slot: the moment it was taken, or None when the run is stopped meanwhile."""
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and self.sent[0] <= now - self.window_s:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return now
                wait_s = self.sent[0] + self.window_s - now
            if stop.wait(wait_s):
                return None

    def give_back(self, taken: float) -> None:
        """A slot taken at `taken` whose send made no RunPod call: the next send may have it."""
        with self.lock:
            if taken in self.sent:  # not yet out of the window
                self.sent.remove(taken)


@dataclass(frozen=True)
class JobResult:
    job_id: str
    workflow_id: str
    status_before: str
    created_at: str
    outcome: str                 # one of OUTCOMES
    status: str | None = None    # the job's status as the last answer told it
    reason: str | None = None
    message: str | None = None
    attempts: int = 0
    retry: str | None = None     # the single-job line that cancels it again (failed and not_sent jobs)


@dataclass(frozen=True)
class BulkCancelReport:
    stack: str
    target: str
    selection: dict[str, Any]
    order: str
    matched: int
    selected: int
    left: int                    # matched past --limit: not selected, nothing sent
    by_workflow: dict[str, int]  # the selected jobs per workflow, most first
    acted: bool                  # False: a preview (no --yes), nothing was sent
    command: str                 # the command that acts on this selection (the preview's --yes line)
    cancelled: int = 0
    ended: int = 0
    failed: int = 0
    not_sent: int = 0
    interrupted: str | None = None   # "interrupted" (Ctrl-C) or "terminated (SIGTERM)": sending stopped there
    stopped: str | None = None       # why sending stopped early otherwise (a refused token)
    jobs: list[JobResult] = field(default_factory=list)
    # the selected jobs per named client that created them, most first; the API token's under API_TOKEN_JOBS
    by_client: dict[str, int] = field(default_factory=dict)
    client_seen: bool | None = None  # Selected.client_seen

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cancel_all(jobs: Sequence[SelectedJob], send: Send, retry_line: Callable[[str], str], *, pace: Pace = Pace(),
               progress: Callable[[str], None] = lambda _m: None,
               recover_line: Callable[[str], str] | None = None) -> tuple[list[JobResult], str | None, str | None]:
    """Each job cancelled through `send`, `pace.concurrency` at a time, in the order given, a failing one retried and
    passed; Ctrl-C (or SIGTERM) stops the sending of more and returns what was answered so far. (results in the
    order given, how it was interrupted or None, why it stopped otherwise or None). A failed job's line is
    `retry_line`'s, or `recover_line`'s when only a recovery can settle it (SETTLED_BY_RECOVERY)."""
    stop = threading.Event()
    window = _Window(pace.per_window, pace.window_s)
    results: dict[str, JobResult] = {}
    stopped: list[str] = []
    lock = threading.Lock()
    queue = iter(jobs)
    counts: Counter[str] = Counter()
    last_said = [time.monotonic()]

    def one(job: SelectedJob) -> JobResult:
        answer: Answer | None = None
        sent = 0  # the sends made: a retry the stop caught waiting for its place in the window was not one
        for attempt in range(1, pace.attempts + 1):
            taken = window.take(stop)
            if taken is None:
                break
            answer, sent = send(job.id), attempt
            if answer.outcome == "ended" and answer.reason in _NO_RUNPOD_CALL:
                window.give_back(taken)
            if answer.outcome == "fatal":
                stopped.append(answer.message)
                stop.set()
                break
            if answer.outcome != "retry" or attempt == pace.attempts:
                break
            wait_s = answer.retry_after_s if answer.retry_after_s is not None else float(2 ** (attempt - 1))
            if stop.wait(min(max(wait_s, 0.0), pace.max_wait_s)):
                break
        if answer is None:
            return _result(job, "not_sent", None, retry_line(job.id), attempts=0)
        outcome = answer.outcome if answer.outcome in ("cancelled", "ended") else "failed"
        message = answer.message
        if answer.outcome == "retry":
            tried = "once" if sent == 1 else f"{sent} times"
            message += f" (tried {tried})" if sent == pace.attempts else f" (tried {tried}; stopped before trying again)"
        line = None
        if outcome == "failed" and recover_line is not None and answer.reason in SETTLED_BY_RECOVERY:
            line = recover_line(job.id)
        elif outcome == "failed":
            line = retry_line(job.id)
        return _result(job, outcome, answer, line, sent, message)

    def sender() -> None:
        while not stop.is_set():
            with lock:
                job = next(queue, None)
            if job is None:
                return
            result = one(job)
            with lock:
                results[job.id] = result
                counts[result.outcome] += 1
                done = sum(counts.values())
                if done % 100 == 0 or time.monotonic() - last_said[0] >= 10:
                    last_said[0] = time.monotonic()
                    progress(f"{done} of {len(jobs)} answered: {counts['cancelled']} cancelled, "
                             f"{counts['ended']} had ended, {counts['failed']} failed")

    # Daemons: a second Ctrl-C while the requests in flight are answered ends the process at once.
    threads = [threading.Thread(target=sender, name=f"cancel-{n}", daemon=True)
               for n in range(min(pace.concurrency, len(jobs)))]
    interrupted = None
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt as exc:
        interrupted = how(exc)
        stop.set()
        progress(f"{interrupted}: no more cancels are sent; waiting for the answers of those in flight")
        for thread in threads:
            if thread.ident is not None:  # started before the interrupt
                thread.join()
    ordered = [results.get(job.id) or _result(job, "not_sent", None, retry_line(job.id)) for job in jobs]
    return ordered, interrupted, (stopped[0] if stopped else None)


def _result(job: SelectedJob, outcome: str, answer: Answer | None, retry: str | None, attempts: int = 0,
            message: str | None = None) -> JobResult:
    return JobResult(job.id, job.workflow_id, job.status, job.created_at, outcome,
                     answer.status if answer else None, answer.reason if answer else None,
                     message if message is not None else (answer.message if answer else None), attempts, retry)


def report(stack: str, target: str, selection: Selection, selected: Selected, command: str,
           results: Iterable[JobResult] | None = None, interrupted: str | None = None,
           stopped: str | None = None) -> BulkCancelReport:
    """The preview (`results` None: nothing was sent) or the outcome of a run."""
    acted = results is not None
    jobs = list(results) if results is not None else [
        JobResult(j.id, j.workflow_id, j.status, j.created_at, "selected") for j in selected.jobs]
    counts = Counter(j.outcome for j in jobs)
    by_workflow = dict(Counter(j.workflow_id for j in selected.jobs).most_common())
    return BulkCancelReport(
        stack=stack, target=target, selection=asdict(selection), order=order(selection), matched=selected.matched,
        selected=len(selected.jobs), left=max(0, selected.matched - len(selected.jobs)),
        by_workflow=by_workflow, acted=acted, command=command, cancelled=counts["cancelled"],
        ended=counts["ended"], failed=counts["failed"], not_sent=counts["not_sent"], interrupted=interrupted,
        stopped=stopped, jobs=jobs,
        by_client=dict(Counter(j.client or API_TOKEN_JOBS for j in selected.jobs).most_common()),
        client_seen=selected.client_seen)


def exit_code(r: BulkCancelReport) -> int:
    """0: every selected job is cancelled or had ended (or none matched); 1: one failed or was not sent; a preview
    of jobs to cancel is 2 (nothing was done: --yes acts)."""
    if not r.acted:
        return 2 if r.selected else 0
    return 0 if r.failed == 0 and r.not_sent == 0 else 1


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def render_text(d: dict[str, Any]) -> str:
    selection = d["selection"]
    what = Selection(tuple(selection["statuses"]), selection["workflow_id"], selection["created_after"],
                     selection["created_before"], selection["limit"], selection.get("client")).describe()
    if not d["selected"]:  # the count, read after the jobs, may find one a runaway queued in between
        text = f"{d['stack']}: no job to cancel ({d['target']}: none {what})"
        if d.get("client_seen") is False:
            text += (f"; and no job there, ended or not, was created by client {selection['client']}: check the "
                     "name against a request line's data.client")
        return text
    lines = []
    if not d["acted"]:
        lines.append(f"{d['stack']}: {_n(d['selected'], 'job')} to cancel ({d['target']}: {what}), {d['order']}:")
    else:
        lines.append(f"{d['stack']}: {d['cancelled']} cancelled, {d['ended']} had already ended, {d['failed']} "
                     f"failed, of {_n(d['selected'], 'job')} selected ({d['target']}: {what})")
    width = max(len(w) for w in d["by_workflow"])
    for workflow, count in d["by_workflow"].items():
        lines.append(f"  {workflow:<{width}}  {count}")
    clients = d.get("by_client") or {}
    if set(clients) - {API_TOKEN_JOBS}:  # the clients' counts, once any selected job names its client
        lines.append("  by client: " + ", ".join(f"{name} {count}" for name, count in clients.items()))
    jobs = d["jobs"]
    if jobs and not d["acted"]:
        created = sorted(j["created_at"] for j in jobs)
        lines.append(f"  created {created[0]} to {created[-1]}")
    lines += _failures(jobs)
    if d["stopped"]:
        lines.append(f"  stopped: {d['stopped']}")
    if d["interrupted"] or d["stopped"]:
        why = d["interrupted"] or "stopped"
        lines.append(f"  {why}: {_n(d['not_sent'], 'job')} not sent; run the command again to cancel them (it "
                     "selects what is still unfinished)")
    if d["left"]:
        lines.append(f"  {_n(d['left'], 'more job')} match{'es' if d['left'] == 1 else ''} past --limit "
                     f"{selection['limit']}, not selected: run the command again for the next ones (or raise --limit)")
    if not d["acted"]:
        lines.append(f"  nothing was cancelled: add --yes to cancel {'them' if d['selected'] != 1 else 'it'}: "
                     f"{d['command']}")
    return "\n".join(lines)


_EACH = 3  # failures of one reason listed each with its message; more are told once, then one line a job


def _failures(jobs: list[dict[str, Any]]) -> list[str]:
    """The failed jobs, grouped by reason (a thousand of one reason is one explanation, not a thousand), each with
    the line that settles it."""
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        if job["outcome"] == "failed":
            by_reason.setdefault(str(job["reason"]), []).append(job)
    lines = []
    for reason, group in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        one = len(group) == 1
        if len(group) > _EACH:
            lines.append(f"  FAILED {len(group)} jobs ({reason}), e.g. {group[0]['job_id']}: {group[0]['message']}")
        for job in group:
            if len(group) <= _EACH:
                lines.append(f"  FAILED {job['job_id']}: {job['message']}")
            lines.append(f"      {job['retry']}")
        if reason in SETTLED_BY_RECOVERY:
            lines.append(f"  no cancel can settle {'it' if one else 'these'}: RunPod has no job under the id recorded, "
                         f"or none is recorded; the database keeps {'it' if one else 'them'} unfinished (in flight) "
                         f"until recovered: run {'its' if one else 'each'} line above "
                         "(docs/RUNBOOK.md, \"A stuck job\")")
    return lines
