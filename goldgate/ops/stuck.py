"""`goldgate stuck`: the jobs still queued or in progress after the time a job may simply be running, read-only from
a stack's local SQLite or its D1. The service never polls RunPod, so these wait for an operator's `recover`. On a
running local stack, so does every job created before its host started: the RunPod it was sent to ended with the
host before (the host records its start in state.json, `started_at`); on a local stack that is down, so does every
job: no RunPod runs for it at all.

Each job's deadline (after which no RunPod job can settle it, and `recover` records it failed) is the one
service/recover.py computes, from the ttl and /run timeout the job was sent with.

Why jobs wait (`QueueDiagnosis`): when the command has the stack's RunPod credentials it reads the endpoint's
max workers and GET /health once, as the operator asks (never a poll: the service does not call RunPod), and
says in a line or two what the counters mean. RunPod's REST v2 WorkerStatus: THROTTLED "waiting on compute
capacity" (no GPU free in the endpoint's pools), UNHEALTHY "failing health checks" (a worker that crashes at
start); with max workers 0 RunPod starts none (it sets 0 after 7 days without requests). The checklist's
endpoint notes (cloud_facts.endpoint_notes) read the same counters through `diagnose`."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from goldgate.cloudflare.d1 import D1Client
from goldgate.errors import GoldgateError
from goldgate.ops.fingerprint import open_stack_database
from goldgate.runpod.jobs import Health
from goldgate.spec import StackSpec, show
from service.config import ServiceConfig
from service.jobs import in_flight_statement, iso_ms
from service.recover import runpod_deadline_s

# A rows-returning query: (sql, params) -> rows as dicts.
Query = Callable[[str, Sequence[Any]], list[dict[str, Any]]]

# Where a stack's lost or damaged database is restored from a backup.
DR_DOC = "docs/D1_DISASTER_RECOVERY.md"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1_000
UNFINISHED = ("queued", "in_progress")
_UNFINISHED_SQL = ", ".join(f"'{s}'" for s in UNFINISHED)
# Columns migration 0005 added: a database an older goldgate migrated lacks them until its next `up`/`pulumi up`,
# and its jobs are then judged as recover judges such jobs, by the stack's current ttl and /run timeout.
_RUN_POLICY = ("policy_ttl_ms", "run_timeout_ms")
# Sorts after every created_at the service writes (RFC 3339, "2026-..."): the cutoff of a stack that is down.
_AFTER_EVERY_JOB = "~"


@dataclass(frozen=True)
class StuckJob:
    id: str
    status: str
    created_at: str
    age_s: float
    runpod_job_id: str | None
    # From when no RunPod job can settle it (service/recover.py): a recovery then records it failed.
    deadline: str
    past_deadline: bool
    recover: str
    advice: str | None
    # Created before the running local stack's host started, or the local stack is down (no host runs: StuckReport's
    # stack_down): the RunPod that took it ended with a host (its queue does not survive a stop or a crash), so no
    # webhook will come, however young the job is.
    before_host_start: bool = False
    # The cloud's recover line without goldgate (curl to the API Worker's admin route, the token kept off the command
    # line); None locally.
    recover_by_hand: str | None = None
    # The named client whose token created it (jobs.client, migration 0010): None for the API token's, or a database
    # from before the column.
    client: str | None = None


# What the endpoint's counters say about why jobs wait (QueueDiagnosis.cause).
CAUSES = ("not_read", "unreachable", "max_workers_zero", "workers_unhealthy", "no_gpu_capacity", "starting",
          "busy", "running", "none_queued")
# The causes that keep jobs waiting on RunPod: worth a line even when no job is stuck yet (the younger
# ones, or the next, wait for the same reason), and a checklist note.
WAITING_CAUSES = ("max_workers_zero", "workers_unhealthy", "no_gpu_capacity", "starting", "busy")


@dataclass(frozen=True)
class QueueDiagnosis:
    """Why jobs may wait on the stack's RunPod endpoint, from one read of its max workers and /health."""

    cause: str                          # one of CAUSES
    lines: list[str]                    # what it means and what to do, one or two lines
    endpoint_id: str | None = None
    workers_max: int | None = None
    health: dict[str, Any] | None = None  # /health as RunPod answered it: {"jobs": {...}, "workers": {...}}
    error: str | None = None            # why /health could not be read (cause unreachable)


@dataclass(frozen=True)
class StuckReport:
    stack: str
    target: str
    now: str
    older_than_minutes: int
    created_before: str
    # every job queued or in progress created before created_before, or (locally) before the stack's running host
    # started (host_started_at): its RunPod ended with the host before
    stuck: int
    more: int               # of those, how many are not listed (--limit)
    younger: int            # queued or in progress, but younger and sent to the running host's RunPod: may be running
    jobs: list[StuckJob]
    # The jobs that count against the stack's cap (api.max_jobs_in_flight) now, counted as a create counts them
    # (service/jobs.py: up to the cap; a job past its own lifetime no longer counts); None for a database from
    # before migration 0005 (no run policy recorded: its next start migrates it).
    in_flight: int | None = None
    max_jobs_in_flight: int | None = None
    # The stacks file's cap when it differs from the one the running service enforces (max_jobs_in_flight):
    # a local stack keeps the cap it started with until `goldgate down` and `up`; None when they agree or the
    # stack is down.
    max_jobs_in_flight_after_restart: int | None = None
    # Why jobs may wait on RunPod (`goldgate stuck` fills it; None from list_local/list_cloud alone).
    queue_diagnosis: QueueDiagnosis | None = None
    # When the running local stack's host started; None in the cloud, for a stack that is down, or for a host an
    # older goldgate started (it recorded no start: its jobs are judged by the window alone, as before).
    host_started_at: str | None = None
    # The local stack is down after a host ran it: no RunPod runs for it, so every job queued or in progress is
    # stuck (none may simply be running), and recover needs the stack up (`goldgate up`). False in the cloud.
    stack_down: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_older_than_minutes(spec: StackSpec) -> int:
    """The stack's execution timeout, in whole minutes: a job younger than that may simply be running."""
    return max(1, math.ceil(spec.endpoint.execution_timeout_ms / 60_000))


def list_local(spec: StackSpec, path: Path, older_than_minutes: int, limit: int = DEFAULT_LIMIT, *,
               service_log: Path | None = None, now_s: float | None = None,
               served_cap: int | None = None, host_started_s: float | None = None,
               stack_down: bool | None = None) -> StuckReport:
    """The stack's own SQLite, opened read-only: the running service's writes go on, nothing here can
    change a row.

    `stack_down`: the stack is down after a host ran it, so no RunPod runs for it and every unfinished job is stuck
    (`LocalPlatform.host_ended`). None: asked of the state dir the database is in, when it is the stack's own
    (`<home>/stacks/<stack>/db.sqlite`); a database anywhere else is judged by the window alone.

    `host_started_s`: when the stack's running host started (state.json's `started_at`). A job created before it
    was sent to the RunPod of a host that has ended since (`goldgate down` and `up`, or a crash and `up`), whose
    queue went with it: it is stuck whatever its age, as `up` said when it started the host.

    `served_cap`: the api.max_jobs_in_flight the stack's running service enforces, which stays the one it
    started with after an edit of the stacks file: the fullness is judged by it, or a stack answering 429
    reads as not full."""
    if not path.is_file():
        # What `goldgate up` leaves beside the database: the stack was brought up here, and its database is gone.
        signs = [p.name for p in (path.parent / "state.json", path.parent / "logs") if p.exists()]
        if signs:
            raise GoldgateError(f"no database at {path}, though stack {spec.name} was brought up under this state dir "
                                f"(its {' and '.join(signs)} are there): the database file was deleted or moved, and "
                                f"its jobs with it (a running stack's service refuses writes from then on, and saves "
                                f"a copy of the file it still has open, {path.name}.rescued-<stamp>, at the first "
                                f"one); restore from that copy, or from a backup if none was saved: {DR_DOC}, \"The database file "
                                "was deleted\"")
        raise GoldgateError(f"no database at {path}: stack {spec.name} was never brought up under this state dir "
                            f"(--home, GOLDGATE_HOME), so no job of it can be stuck; check the state dir, or "
                            f"`goldgate up {spec.name}`")
    conn = open_stack_database(path)

    def query(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in conn.execute(sql, tuple(params))]

    if stack_down is None:
        stack_down = _host_ended(spec.name, path)
    try:
        return _list(query, spec, "local", older_than_minutes, limit, now_s, where=str(path),
                     migrate=f"`goldgate up {spec.name}` applies the migrations", service_log=service_log,
                     served_cap=served_cap, host_started_s=None if stack_down else host_started_s,
                     stack_down=stack_down)
    except sqlite3.DatabaseError as exc:
        raise GoldgateError(f"reading {path} failed ({exc}): the stack's database file is damaged or not a database "
                            f"(overwritten, or cut short), so its jobs cannot be read; restore it from a backup with "
                            f"the stack down (`goldgate down {spec.name}`, then `goldgate up {spec.name}`): "
                            f"{DR_DOC}") from None
    finally:
        conn.close()


def _host_ended(stack: str, path: Path) -> bool:
    """Whether `path` is the database of `stack` under a goldgate home whose host ran it and has ended."""
    # Imported here, as the local target's own modules import goldgate.ops's.
    from goldgate.local.platform import LocalPlatform
    from goldgate.local.state import StackDir

    where = path.parent.resolve() / path.name  # a link in the file's place is not followed out of its stack dir
    if len(where.parents) < 3:
        return False
    home = where.parents[2]
    if StackDir(home, stack).db_path != where:
        return False
    return LocalPlatform(home).host_ended(stack)


def list_cloud(spec: StackSpec, d1: D1Client, database_id: str, older_than_minutes: int,
               limit: int = DEFAULT_LIMIT, *, now_s: float | None = None) -> StuckReport:
    """The stack's D1 over the REST API: SELECTs only."""
    def query(sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        return d1.query(database_id, sql, list(params))

    return _list(query, spec, "cloud", older_than_minutes, limit, now_s, where=f"D1 {database_id}",
                 migrate="check --database-id, or apply the migrations (`pulumi up`)")


def _list(query: Query, spec: StackSpec, target: str, older_than_minutes: int, limit: int, now_s: float | None,
          *, where: str, migrate: str, service_log: Path | None = None,
          served_cap: int | None = None, host_started_s: float | None = None,
          stack_down: bool = False) -> StuckReport:
    columns = {row["name"] for row in query("PRAGMA table_info(jobs)", ())}
    needed = {"id", "stack", "status", "created_at", "created_at_ms", "runpod_job_id"}
    if not needed <= columns:
        raise GoldgateError(f"{where} has no jobs table goldgate made: it is not a migrated goldgate database "
                            f"({migrate})")
    # The database's clock, as prune reads it (D1's in the cloud, where the service stamps created_at and recover
    # judges the deadline; this machine's locally): a laptop's clock off by a day must not list every job or none.
    now = now_s if now_s is not None else float(
        query("SELECT (julianday('now') - 2440587.5) * 86400.0 AS now_s", ())[0]["now_s"])
    before = iso_ms(now - older_than_minutes * 60)
    # A host start later than the clock reads now is a clock stepped back since: no job can be judged by it.
    host_started = iso_ms(host_started_s) if host_started_s is not None and host_started_s <= now else None
    cutoff = max(before, host_started or before)  # the same RFC 3339 form: compared as text, as SQL compares it
    if stack_down:  # no RunPod runs: every unfinished job is stuck, one created a second ago (or "later") too
        cutoff = _AFTER_EVERY_JOB
    # the columns later migrations added (0005's run policy, 0010's client), NULL on a database without them yet
    added = ", ".join(c if c in columns else f"NULL AS {c}" for c in (*_RUN_POLICY, "client"))
    # From the unfinished jobs' own index (migration 0007, jobs_in_flight), sorted after: each `+` keeps SQLite off
    # the created_at index, whose walk (to filter, or to skip the sort) read every older job's row to find the few
    # unfinished ones: the whole table when none is stuck (D1 bills each row read; a cron runs this often).
    rows = query(f"SELECT id, stack, status, created_at, created_at_ms, runpod_job_id, {added} FROM jobs "
                 f"WHERE +created_at < ?1 AND status IN ({_UNFINISHED_SQL}) ORDER BY +created_at, +id LIMIT ?2",
                 (cutoff, limit))
    counts = query(f"SELECT SUM(created_at < ?1) AS stuck, SUM(created_at >= ?1) AS younger FROM jobs "
                   f"WHERE status IN ({_UNFINISHED_SQL})", (cutoff,))[0]
    stuck, younger = int(counts["stuck"] or 0), int(counts["younger"] or 0)
    if target == "cloud":
        other = next((r["stack"] for r in rows if r["stack"] != spec.name), None)
        if other is not None:  # its recover lines would name this stack's API, which has no such job
            raise GoldgateError(f"{where} holds the jobs of stack {show(other)}, not of {spec.name}: check "
                                f"--database-id, or list it as that stack")
    # recover.py judges a job sent before migration 0005 by the service's current ttl and /run timeout: the
    # stack's endpoint.ttl_ms, and the service's default timeout (no stack sets another).
    def deadline_s(job: dict[str, Any]) -> float:
        return runpod_deadline_s(job, spec.endpoint.ttl_ms, ServiceConfig.runpod_timeout_s)

    jobs = [_job(deadline_s, spec.name, target, row, now, service_log, host_started, stack_down) for row in rows]
    cap = served_cap or spec.api.max_jobs_in_flight
    after_restart = spec.api.max_jobs_in_flight if cap != spec.api.max_jobs_in_flight else None
    in_flight = None
    if set(_RUN_POLICY) <= columns:
        counted = in_flight_statement(now, cap)
        in_flight = int(query(counted.sql, counted.params)[0]["in_flight"] or 0)
    return StuckReport(stack=spec.name, target=target, now=iso_ms(now), older_than_minutes=older_than_minutes,
                       created_before=before, stuck=stuck, more=max(0, stuck - len(jobs)), younger=younger,
                       jobs=jobs, in_flight=in_flight, max_jobs_in_flight=cap,
                       max_jobs_in_flight_after_restart=after_restart, host_started_at=host_started,
                       stack_down=stack_down)


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


# Where a worker that exits at start (no models baked: preflight_failed) is treated: the runbook's first aid.
FIRST_AID = ("no models baked (preflight_failed) is first aid: docs/RUNBOOK.md, \"No checkpoint models appear to "
             "be available\"")


# Jobs queued per max worker past which `stuck` says the queue may be a runaway client's, not traffic to serve.
RUNAWAY_QUEUE_PER_WORKER = 50


def diagnose(health: Health, *, workers_max: int | None, gpu_pools: Sequence[str], stack: str,
             target: str) -> tuple[str, list[str]]:
    """(cause, lines): what an endpoint's /health counters and max workers say about why jobs wait.
    `target` local or cloud: where the stack file is and how a change of it is applied."""
    queued, running = health.in_queue, health.in_progress
    throttled, unhealthy, up = health.throttled, health.unhealthy, health.up
    w = health.worker_count
    if target == "local":
        stack_file = "stacks/local.yaml"
        apply = restore = f"`goldgate down {stack} && goldgate up {stack}`"
        logs = f"the worker logs (`goldgate status {stack}` names the workers that exited, with their log)"
        image = f"`goldgate doctor --stack {stack}` (the image's models)"
        workers = (f"`goldgate status {stack}` shows workers exiting at start (preflight_failed: "
                   "docs/RUNBOOK.md, \"No checkpoint models appear to be available\")")
    else:
        stack_file, apply = f"stacks/Pulumi.{stack}.yaml", f"`pulumi up --stack {stack}`"
        restore = f"`pulumi up --refresh --stack {stack}`"  # RunPod changed it; Pulumi's state did not
        logs = "the worker logs (RunPod console: the endpoint's Workers and Logs tabs)"
        image = ("that RunPod can pull the pinned image (endpoint.registry_credential_id), and "
                 "`goldgate doctor --image <the pin>` for its models")
        workers = "see the endpoint's Workers tab (RunPod console)"
    pools = ", ".join(gpu_pools) or "none"
    waiting = f"{_n(queued, 'job')} IN_QUEUE"
    if workers_max == 0 and (queued or not up):
        return "max_workers_zero", [
            (f"the endpoint's max workers is 0, so RunPod starts no worker and {waiting} wait; "
            f"RunPod sets it to 0 after 7 days without requests: {restore} restores the stack file's "
            "endpoint.workers_max")]
    if unhealthy and (queued or not up):
        also = f" ({throttled} more throttled)" if throttled else ""
        return "workers_unhealthy", [
            (f"{_n(unhealthy, 'worker')} unhealthy{also} and {up} up: workers fail at start, "
            f"so {waiting} wait for one that never comes"),
            (f"check {logs}; {image}; a start script that exits shows there: {FIRST_AID}; each restart fails the "
             "same way (a crash loop): raising endpoint.workers_max only adds workers that fail so")]
    if queued and not up and throttled:
        return "no_gpu_capacity", [
            (f"{waiting}, no worker up and {throttled} throttled: no GPU free in the endpoint's "
            f"pools ({pools}); RunPod starts them when capacity frees up"),
            (f"add pools to endpoint.gpu_pools in {stack_file} and apply it ({apply}), or wait; a job "
            "still queued at its ttl expires, and recover then records it failed")]
    if queued and not up:
        return "starting", [
            (f"{waiting} and no worker up, none throttled or unhealthy (max workers "
            f"{workers_max}): RunPod has yet to start one (a cold start); if it stays so, {workers}")]
    if queued and w("initializing") and not w("running") and not w("idle"):
        return "starting", [
            (f"{waiting} and {w('initializing')} initializing workers, none running or idle yet (max workers "
             f"{workers_max}): the workers are starting (a cold start: RunPod loads the image and its models), and "
             f"jobs run once one is ready; if they stay initializing, {workers}")]
    if queued:
        if w("idle"):
            # A worker between jobs: the runpod SDK's worker loop asks for its next job about once a second, so a
            # queue behind idle workers drains without more of them (and /health's count is one moment's).
            lines = [(f"{waiting} behind {w('running')} running, {w('idle')} idle and {w('initializing')} "
                      f"initializing workers (max workers {workers_max}): an idle worker takes a queued job within "
                      "about a second (the runpod worker loop asks for one each second), so this queue is draining; "
                      f"more workers (endpoint.workers_max in {stack_file}) help only if jobs still wait while no "
                      "worker is idle")]
        else:
            lines = [(f"{waiting} behind {w('running')} running, {w('idle')} idle and "
                     f"{w('initializing')} initializing workers (max workers {workers_max}): the endpoint is "
                     "busy and jobs wait their turn; raise endpoint.workers_max in "
                      f"{stack_file} for more at once")]
        if throttled or unhealthy:
            lines.append(f"{throttled} more throttled (no GPU free in {pools}), {unhealthy} unhealthy "
                         f"(failing at start: {logs})")
        if queued >= RUNAWAY_QUEUE_PER_WORKER * max(workers_max or 1, 1):
            # The cloud's jobs are read from its D1, as `goldgate stuck --target cloud` read them: without these
            # options the line would list the local stack's.
            where = " --target cloud --database-id <D1 uuid>" if target == "cloud" else ""
            few = f"for {_n(workers_max, 'worker')}" if workers_max else "for the endpoint's workers"
            lines.append(f"a queue this long {few} may not be your traffic: a client "
                         "stuck in a loop is stopped, not served with more workers (docs/RUNBOOK.md, \"A runaway "
                         f"client: stop the spend\"; `goldgate cancel --all-queued --stack {stack}{where}` lists its "
                         "jobs)")
        return "busy", lines
    if unhealthy:
        return "workers_unhealthy", [
            f"{_n(unhealthy, 'worker')} unhealthy (failing at start): check {logs}; {image}; {FIRST_AID}"]
    if running:
        return "running", [
            (f"nothing queued, {_n(running, 'job')} in progress: a listed job may still run "
            "(until its deadline) or its webhook was lost; recover asks RunPod which")]
    return "none_queued", [
        ("no job queued or in progress on the endpoint: no listed job waits for a worker; each "
        "ended there (its webhook was lost) or expired: recover settles it")]


def read_diagnosis(read: Callable[[], tuple[str, int | None, Health]], spec: StackSpec,
                   target: str) -> QueueDiagnosis:
    """One read of the endpoint (`read`: its id, max workers and /health), interpreted; a failure is a
    note, never fatal."""
    try:
        endpoint_id, workers_max, health = read()
    except GoldgateError as exc:
        return QueueDiagnosis("unreachable", [
            f"/health not read ({str(exc)[:300]}): why jobs wait is unknown; the list stands"],
            error=str(exc)[:1_000])
    cause, lines = diagnose(health, workers_max=workers_max, gpu_pools=spec.endpoint.gpu_pools,
                            stack=spec.name, target=target)
    return QueueDiagnosis(cause, lines, endpoint_id, workers_max,
                          {"jobs": dict(health.jobs), "workers": dict(health.workers)})


NOT_ASKED = "not asked (--no-runpod): without it, `goldgate stuck` says why jobs wait"


def not_read(line: str) -> QueueDiagnosis:
    return QueueDiagnosis("not_read", [line])


def recover_line(job_id: str, stack: str, target: str) -> str:
    """The command that recovers the job: `goldgate recover`, which in the cloud (`--target cloud`) finds the stack's
    API by its `api_url` output and its token in GOLDGATE_API_TOKEN[_<STACK>] or the goldgate:apiToken secret."""
    if target == "local":
        return f"goldgate recover {job_id} --stack {stack}"
    return f"goldgate recover {job_id} --stack {stack} --target cloud"


def recover_by_hand(job_id: str, stack: str) -> str:
    """The cloud's recovery without goldgate (RUNBOOK, A stuck job): the API Worker's admin route, with the token
    in $API_TOKEN (`api_token_line`), kept off the command line."""
    return (f"curl -sS -X POST -H @<(printf 'Authorization: Bearer %s\\n' \"$API_TOKEN\") "
            f"\"$(pulumi stack output api_url --stack {stack})/api/admin/recover/{job_id}\"")


def api_token_line(stack: str) -> str:
    return f"API_TOKEN=$(pulumi config get goldgate:apiToken --stack {stack})"


def _job(deadline_of: Callable[[dict[str, Any]], float], stack: str, target: str, row: dict[str, Any], now: float,
         service_log: Path | None, host_started: str | None = None, stack_down: bool = False) -> StuckJob:
    deadline_s = deadline_of(row)
    past = now >= deadline_s
    rid = row["runpod_job_id"]
    earlier = stack_down or (host_started is not None and row["created_at"] < host_started)
    # What `up` said when it started the host (LocalPlatform._report_unsettled): the RunPod it went to is gone.
    ended = (f"created before the stack's host started ({host_started}): the local RunPod it was sent to ended with "
             "the host before, so no webhook will come")
    if stack_down:  # what `down`, or a host stopped by a signal, said as it stopped
        ended = (f"the stack is down: the local RunPod it was sent to ended with the stack's host, so no webhook will "
                 f"come; `goldgate up {stack}` first (recover asks the stack's API)")
    advice = None
    if past:
        advice = ("past its deadline: no RunPod job can settle it any more; recover records it failed (or completed, "
                  "from the outcome its worker stored)")
        advice = f"{ended}; {advice}" if stack_down else advice
    elif rid is None:
        log = f"in {service_log}" if service_log is not None else "in the API Worker's logs"
        advice = (f"no RunPod id recorded: if recover answers not_submitted, find the job.runpod_id_unrecorded line "
                  f"of this job {log} and recover again adding --runpod-job-id <id>, its runpod_job_id (none: RunPod "
                  f"never took it; recover from {iso_ms(deadline_s)} records it failed)")
        advice = f"{ended}; {advice}" if earlier else advice
    elif earlier:
        when, which = ("then", "the new host") if stack_down else ("now", "this host")
        advice = (f"{ended}; recover settles it {when} (completed from the outcome its worker stored, else failed: "
                  f"the RunPod of {which} has no such job)")
    return StuckJob(id=row["id"], status=row["status"], created_at=row["created_at"],
                    age_s=round(now - row["created_at_ms"] / 1000, 3), runpod_job_id=rid, deadline=iso_ms(deadline_s),
                    past_deadline=past, recover=recover_line(row["id"], stack, target), advice=advice,
                    before_host_start=earlier,
                    recover_by_hand=recover_by_hand(row["id"], stack) if target == "cloud" else None,
                    client=row.get("client"))


def age_text(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3_600:
        return f"{s // 60} min"
    if s < 86_400:
        return f"{s // 3_600} h {s % 3_600 // 60:02d} min"
    return f"{s // 86_400} d {s % 86_400 // 3_600} h"


def _cap_line(d: dict[str, Any]) -> list[str]:
    """How full the stack is against its cap, when that was read."""
    if d.get("in_flight") is None or d.get("max_jobs_in_flight") is None:
        return []
    full = d["in_flight"] >= d["max_jobs_in_flight"]
    line = (f"  in flight: {d['in_flight']}{' (FULL)' if full else ''} of at most {d['max_jobs_in_flight']} "
            "(api.max_jobs_in_flight: a create beyond it is answered 429 queue_full; a stuck job counts until its "
            "ttl and /run timeout have passed)")
    later = d.get("max_jobs_in_flight_after_restart")
    if later is None:
        return [line]
    stack = d["stack"]
    restart = (f"  the running stack keeps the cap it started with: its stacks file now says {later}, "
               f"which `goldgate reload {stack}` applies (no job stops)")
    return [line, restart]


def _diagnosis_lines(d: dict[str, Any]) -> list[str]:
    """Why jobs may wait on RunPod: always when jobs are stuck, else only a cause worth acting on."""
    diagnosis = d.get("queue_diagnosis")
    if not diagnosis or not (d["stuck"] or diagnosis["cause"] in (*WAITING_CAUSES, "unreachable")):
        return []
    first, *rest = diagnosis["lines"]
    return [f"  why jobs wait (RunPod): {first}", *(f"      {line}" for line in rest)]


def render_text(d: dict[str, Any]) -> str:
    window = f"queued or in progress for more than {d['older_than_minutes']} min"
    started = d.get("host_started_at")
    if started and started > d["created_before"]:  # the host's start lists more than the window does
        window += f" or since before its host started ({started})"
    if d.get("stack_down"):  # no RunPod runs for it: no job may simply be running
        window = ("queued or in progress while the stack is down: its RunPod ended with its host, so none can be "
                  "running")
    if not d["stuck"]:
        line = f"{d['stack']}: no job stuck ({d['target']}: none {window})"
        line += f"; {d['younger']} younger may simply be running" if d["younger"] else ""
        return "\n".join([line, *_cap_line(d), *_diagnosis_lines(d)])
    head = (f"{d['stack']}: {d['stuck']} job{'s' if d['stuck'] != 1 else ''} stuck ({d['target']}: {window}, "
            "oldest first; recover each: docs/RUNBOOK.md, A stuck job)")
    lines = [head]
    if d["target"] == "cloud":
        lines.append("  each recover line finds the stack's API by its `api_url` Pulumi output, and its token in "
                     f"GOLDGATE_API_TOKEN[_{d['stack'].upper().replace('-', '_')}] or the goldgate:apiToken secret")
    for job in d["jobs"]:
        deadline = ("PAST its deadline " if job["past_deadline"] else "deadline ") + job["deadline"]
        client = f"  client {job['client']}" if job.get("client") else ""
        lines.append(f"  {job['id']}  {job['status']:<11}  created {job['created_at']} "
                     f"({age_text(job['age_s'])} ago)  runpod {job['runpod_job_id'] or '(none recorded)'}  {deadline}"
                     f"{client}")
        lines.append(f"      {job['recover']}")
        if job["advice"]:
            lines.append(f"      {job['advice']}")
    if d["more"]:
        shown = len(d["jobs"])
        # `--limit` takes at most MAX_LIMIT: a larger one was advised, and refused. Past it, each run after the
        # listed ones are recovered lists the next oldest.
        if shown + d["more"] <= MAX_LIMIT:
            rest = f"--limit {shown}: a larger one lists them"
        elif shown < MAX_LIMIT:
            rest = f"--limit {shown}: --limit {MAX_LIMIT}, the most, lists the oldest {MAX_LIMIT}"
        else:
            rest = (f"--limit {MAX_LIMIT}, the most: recover these, then run it again to list the next "
                    f"{MAX_LIMIT}")
        lines.append(f"  ... and {d['more']} more, not listed ({rest})")
    if d["target"] == "cloud" and d["jobs"]:  # from a machine without goldgate: the first job's (each ends in its id)
        lines.append(f"  from a machine without goldgate: {api_token_line(d['stack'])}  # kept off the command line")
        lines.append(f"      {recover_by_hand(d['jobs'][0]['id'], d['stack'])}")
    if d["younger"]:
        lines.append(f"  {d['younger']} younger job{'s' if d['younger'] != 1 else ''} queued or in progress, not "
                     "listed: may simply be running")
    return "\n".join([*lines, *_cap_line(d), *_diagnosis_lines(d)])
