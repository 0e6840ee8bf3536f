"""The arguments of the operations commands (dr-drill, dr-restore, prune, stuck, cancel, jobs, checklist, metrics);
the commands themselves are in goldgate.commands.ops, imported only when one runs."""

from __future__ import annotations

import argparse
import os
import re
from datetime import date

from goldgate.commands import add_command, path_to_create
from goldgate.commands.local_args import add_api_target
from goldgate.commands.output import add_json_flag
from goldgate.commands.release_args import TARGETS, _target

COMMANDS = "goldgate.commands.ops"


MAX_KEEP_DAYS = 3_650  # as storage.result_ttl_days: ten years


def _days(text: str) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdecimal()):
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a whole number of days; give e.g. 30")
    # Compared as text first: int() refuses strings of thousands of digits with a message of its own.
    if len(digits.lstrip("0")) > len(str(MAX_KEEP_DAYS)) or not 1 <= int(digits) <= MAX_KEEP_DAYS:
        raise argparse.ArgumentTypeError(f"{digits[:64]} days is out of range; give 1 to {MAX_KEEP_DAYS}")
    return int(digits)


def _clock_date(text: str) -> str:
    """--clock-checked: a calendar date, YYYY-MM-DD (checked against the prune's clock once it is read)."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a date; give today's UTC date as YYYY-MM-DD")


MAX_OLDER_THAN_MINUTES = MAX_KEEP_DAYS * 24 * 60


def _minutes(text: str) -> int:
    digits = text.strip()
    if not (digits.isascii() and digits.isdecimal()):
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a whole number of minutes; give e.g. 30 (0 lists "
                                         "every queued or in-progress job)")
    if len(digits.lstrip("0")) > len(str(MAX_OLDER_THAN_MINUTES)) or int(digits) > MAX_OLDER_THAN_MINUTES:
        raise argparse.ArgumentTypeError(f"{digits[:64]} minutes is out of range; give 0 to {MAX_OLDER_THAN_MINUTES}")
    return int(digits)


def _limit(text: str) -> int:
    from goldgate.ops.stuck import MAX_LIMIT

    return _count(text, MAX_LIMIT, "row")


def _count(text: str, most: int, what: str) -> int:
    """A whole number from 1 to `most`, or the usage error naming `what` it counts."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdecimal()) or len(digits) > 6 or not 1 <= int(digits) <= most:
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a {what} count from 1 to {most}")
    return int(digits)


def _since(text: str) -> str:
    """--since checked as it is parsed: a malformed time is a usage error (exit 2) like any other argument's, and is
    caught before the database is opened or the cloud asked for it."""
    from service.metrics import MetricsError, normalize_since

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty or blank; give a value")
    try:
        return normalize_since(text) or text
    except MetricsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("since ")) from None


# --limit of a selection of `goldgate cancel`: its default is goldgate.ops.bulk_cancel.DEFAULT_LIMIT.
DEFAULT_CANCEL_LIMIT, MAX_CANCEL_LIMIT = 2_000, 10_000


def _cancel_limit(text: str) -> int:
    return _count(text, MAX_CANCEL_LIMIT, "job")


# --limit of `goldgate jobs`: the jobs it shows, read from GET /api/jobs 200 at a time.
DEFAULT_JOBS_LIMIT, MAX_JOBS_LIMIT = 50, 1_000


def _jobs_limit(text: str) -> int:
    return _count(text, MAX_JOBS_LIMIT, "job")


def _statuses(text: str) -> str:
    """--status of `goldgate jobs`: one or more of the service's job statuses, comma-separated, as GET /api/jobs
    takes them; checked here so that a typo is a usage error, not a request."""
    from service.jobs import STATUSES

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty or blank; give one or more job statuses, comma-separated")
    named = [status.strip() for status in text.split(",")]
    wrong = next((status for status in named if status not in STATUSES), None)
    if wrong is not None:
        raise argparse.ArgumentTypeError(f"{wrong[:64]!r} is not a job status: give one or more of "
                                         f"{', '.join(STATUSES)}, comma-separated")
    return ",".join(dict.fromkeys(named))


def _after(text: str) -> str:
    """--created-after of `goldgate jobs`: checked as --since is, and sent as given (the API reads it as --since is
    read, and takes the jobs strictly after it: a time rounded to the millisecond here would skip one)."""
    _since(text)
    return text.strip()


def _client(text: str) -> str:
    from service.clients import NAME, NAME_RULE

    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a client name ({NAME_RULE}), as `goldgate client "
                                         "list --stack <stack>` lists them")
    return text


def _workflow(text: str) -> str:
    value = text.strip()
    if not value or len(value) > 200 or not value.isprintable():
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not a workflow id (as POST /api/queue/create takes it, "
                                         "e.g. sdxl-txt2img)")
    return value


_CHECKLIST_CLOUD_HELP = (
    "cloud: read STAGING's and PROD's RunPod endpoints (REST v2 and /health) and the stack's D1 through the APIs, "
    "read-only; the ledger and DR drill records still come from --home. Credentials come from the environment "
    "and are never printed: RUNPOD_API_KEY (or RUNPOD_API_KEY_<STACK>) and CLOUDFLARE_API_TOKEN (D1 read; Workers "
    "Scripts Read for a stack that declares database.retention); the account id and API bases (RunPod's, and "
    "Cloudflare's goldgate:cloudflareApiBase) come from stacks/Pulumi.<stack>.yaml")
_METRICS_CLOUD_HELP = (
    "cloud: read job_metrics from the stack's D1 over the REST API, read-only, with CLOUDFLARE_API_TOKEN from the "
    "environment (never printed); the account id and the Cloudflare API base (goldgate:cloudflareApiBase) come "
    "from stacks/Pulumi.<stack>.yaml")


def _api_base(text: str) -> str:
    """The Cloudflare API base (hidden: tests point it at a stand-in), checked as it is parsed: an unclosed IPv6
    bracket was a traceback from the HTTP client, and an ftp:// base a call that "may have been applied"."""
    import httpx

    from goldgate.spec import CLOUDFLARE_API

    try:
        url = httpx.URL(text)
        ok = url.scheme in ("http", "https") and bool(url.host) and (url.port is None or 0 < url.port < 65536)
    except httpx.InvalidURL:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"{text[:100]!r} is not an http(s) URL of the Cloudflare API (its base is "
                                         f"{CLOUDFLARE_API})")
    return text


def _add_cloud_flags(p: argparse.ArgumentParser, cloud_help: str) -> None:
    # The release commands' default too: GOLDGATE_TARGET=cloud makes every `--target` command act on the cloud.
    p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET", "local"),
                   help="local (default, or env GOLDGATE_TARGET): the local deployment under --home. " + cloud_help)
    p.add_argument("--stacks-dir", help="cloud: where Pulumi.<stack>.yaml live (default: the repository's stacks/)")
    p.add_argument("--database-id", help="cloud: the D1 uuid (default: looked up by the stack's database name)")
    # Hidden, an override (tests point it at a stand-in): by default the stack file's goldgate:cloudflareApiBase.
    p.add_argument("--cloudflare-api-base", type=_api_base, default=None, help=argparse.SUPPRESS)


def add_d1_arguments(p: argparse.ArgumentParser, cloud_help: str) -> None:
    """--cloud (or --target cloud, as the other commands name it) and how to reach the stack's D1 over Cloudflare's
    REST API (dr-drill, prune and stuck)."""
    p.add_argument("--cloud", action="store_true", help=cloud_help)
    # The release commands' default too: GOLDGATE_TARGET=cloud makes every `--target` command act on the cloud.
    p.add_argument("--target", type=_target, choices=TARGETS, default=os.environ.get("GOLDGATE_TARGET", "local"),
                   help="local (default, or env GOLDGATE_TARGET): the local stack under --home; cloud: the same as "
                        "--cloud")
    p.add_argument("--database-id", help="the D1 database uuid (cloud)")
    p.add_argument("--account-id", help="Cloudflare account id (default: the stack's Pulumi spec)")
    # Hidden, an override (tests point it at a stand-in): by default the stack file's goldgate:cloudflareApiBase.
    p.add_argument("--api-base", type=_api_base, default=None, help=argparse.SUPPRESS)


def register(sub: argparse._SubParsersAction) -> None:
    def add(name: str, func: str, help_text: str) -> argparse.ArgumentParser:
        return add_command(sub, COMMANDS, name, func, help_text)

    p = add("dr-drill", "cmd_dr_drill",
            "D1 disaster-recovery drill: back up, restore into a fresh database, verify, "
            "report RPO/RTO (see docs/D1_DISASTER_RECOVERY.md)")
    p.add_argument("stack", help="staging or prod (stacks/local.yaml; stacks/Pulumi.<stack>.yaml for the cloud)")
    p.add_argument("--discard-backup", action="store_true", help="remove the local backup after a passing drill")
    add_d1_arguments(p, "drill the stack's real D1 (export -> R2 backups/ -> scratch D1 import); needs "
                        "CLOUDFLARE_API_TOKEN, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY")
    p.add_argument("--r2-endpoint", help="R2 S3 endpoint (default: the stack's bucket host, "
                   "https://<account>[.<jurisdiction>].r2.cloudflarestorage.com)")
    p.add_argument("--bucket", help="R2 bucket for backups/ (default: the stack's storage.backup_bucket)")
    add_json_flag(p)

    p = add("dr-restore", "cmd_dr_restore", "restore a verified local backup over a stopped stack's database "
                                            "(the old database is kept beside it)")
    p.add_argument("stack", help="a local stack in stacks/local.yaml: staging or prod")
    p.add_argument("--backup", help="<home>/backups/<stack>/<stamp>.sqlite (its manifest beside it)")
    p.add_argument("--list", action="store_true",
                   help="list the stack's backups, newest first, with the jobs and last write each holds; restore "
                        "nothing (pick the newest taken before the damage)")
    p.add_argument("--from-stack", metavar="STACK",
                   help="restore a backup another stack took on purpose (e.g. PROD's into STAGING): the stack "
                        "its manifest names; without it such a backup is refused")
    p.add_argument("--json", action="store_true",
                   help="print machine-readable JSON: with --list, each backup (its path, when taken, jobs and "
                        "other rows, last write, newest migration, or why it cannot be restored); a restore, what "
                        "it did (the database kept aside, the jobs the backup lacks, pending migrations)")

    p = add("prune", "cmd_prune",
            "delete terminal jobs (and their webhook deliveries) older than --keep-days, "
            "expired idempotency keys and, if asked, old job metrics: D1 stays under 10 GB "
            "(see docs/RUNBOOK.md, D1 retention)")
    p.add_argument("stack", help="staging or prod (stacks/local.yaml; stacks/Pulumi.<stack>.yaml for the cloud)")
    p.add_argument("--keep-days", type=_days, required=True, metavar="N",
                   help="keep jobs finished in the last N days; at least the stack's storage.result_ttl_days")
    p.add_argument("--metrics-keep-days", type=_days, metavar="M",
                   help="also delete job_metrics rows older than M days (M >= N); without it they are all kept")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    p.add_argument("--clock-checked", type=_clock_date, metavar="DATE",
                   help="today's UTC date (YYYY-MM-DD) as a clock you trust reads it: prune although rows due "
                        "to go are followed by more than N + 366 days with no job created (refused otherwise, as "
                        "a clock stepped ahead would make it); recorded with the prune")
    add_d1_arguments(p, "prune the stack's real D1 over the REST API; needs --database-id and CLOUDFLARE_API_TOKEN "
                        "(D1 Edit), never printed")
    add_json_flag(p)

    p = add("stuck", "cmd_stuck",
            "list the jobs queued or in progress longer than a job may run (their webhook never "
            "came) or, on a running local stack, since before its host started (its RunPod ended with the host "
            "before), oldest first, with the recover line for each; exit 1 when there is one "
            "(see docs/RUNBOOK.md, A stuck job)")
    p.add_argument("stack", help="staging or prod (stacks/local.yaml; stacks/Pulumi.<stack>.yaml for the cloud)")
    p.add_argument("--older-than", type=_minutes, metavar="MINUTES",
                   help="list jobs created more than MINUTES ago (default: the stack's execution timeout, "
                        "endpoint.execution_timeout_ms, rounded up to whole minutes: 10 in the shipped stack files; "
                        "a younger job may simply be running); 0 lists every queued or in-progress job")
    p.add_argument("--limit", type=_limit, default=50, metavar="N",
                   help="list at most N jobs, oldest first (default 50, at most 1000); the rest are counted")
    p.add_argument("--no-runpod", action="store_true",
                   help="do not read the RunPod endpoint's max workers and /health (once per run; with "
                        "them the command says why jobs wait: no GPU capacity, workers failing at start, max "
                        "workers 0, a busy endpoint); the cloud reads them with RUNPOD_API_KEY or "
                        "RUNPOD_API_KEY_<STACK>")
    add_d1_arguments(p, "list the stack's real D1's stuck jobs over the REST API (SELECTs only); needs --database-id "
                        "and CLOUDFLARE_API_TOKEN (D1 Read), never printed")
    add_json_flag(p)

    p = add("cancel", "cmd_cancel", "cancel a job: one RunPod /cancel call stops its GPU spend; a job that has "
                                    "ended is left as it is (POST /api/cancel/<job_id>). Or cancel a runaway "
                                    "client's jobs at once: --all-queued or --all-active (docs/RUNBOOK.md, A "
                                    "runaway client)")
    p.add_argument("job_id", nargs="?", help="the job's id (32 hex), as POST /api/queue/create answered; or none, "
                                             "with --all-queued or --all-active")
    p.add_argument("--stack", required=True, help="the stack that holds the job")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all-queued", action="store_true",
                       help="cancel every job the stack's database has queued (read as `goldgate stuck` reads it), "
                            "narrowed by --workflow and --created-after/--created-before; lists them and cancels "
                            "nothing without --yes (exit 2)")
    which.add_argument("--all-active", action="store_true",
                       help="as --all-queued, and first the jobs the database has in progress (those a recovery "
                            "saw running: until its webhook, a running job reads queued)")
    p.add_argument("--workflow", type=_workflow, metavar="ID", help="only the jobs of this workflow id")
    p.add_argument("--client", type=_client, metavar="NAME",
                   help="only the jobs this named client created (`goldgate client list`); the preview counts the "
                        "selected jobs per client")
    p.add_argument("--created-after", type=_since, metavar="TIME",
                   help="only jobs created at or after TIME (ISO 8601, UTC if no offset)")
    p.add_argument("--created-before", type=_since, metavar="TIME",
                   help="only jobs created before TIME (ISO 8601, UTC if no offset)")
    p.add_argument("--limit", type=_cancel_limit, metavar="N",
                   help=f"cancel at most N jobs a run, in progress first then oldest first (default "
                        f"{DEFAULT_CANCEL_LIMIT}, at most {MAX_CANCEL_LIMIT}); the rest are counted and left")
    p.add_argument("--yes", action="store_true", help="cancel the selected jobs (without it: list them, exit 2)")
    add_api_target(p)
    p.add_argument("--database-id", help="--target cloud with a selection: the stack's D1 uuid the jobs are read "
                                         "from (CLOUDFLARE_API_TOKEN with D1 Read, never printed)")
    p.add_argument("--account-id", help="Cloudflare account id (default: the stack's Pulumi spec)")
    # Hidden, an override (tests point it at a stand-in): by default the stack file's goldgate:cloudflareApiBase.
    p.add_argument("--api-base", type=_api_base, default=None, help=argparse.SUPPRESS)
    add_json_flag(p)

    p = add("jobs", "cmd_jobs", "list a stack's jobs, newest first, through its API (GET /api/jobs with the API "
                                "token): who created them, where each stands, when it ended")
    p.add_argument("stack", help="staging or prod (a local stack under --home; with --target cloud, the Pulumi stack)")
    p.add_argument("--status", type=_statuses, metavar="S[,S]",
                   help="only jobs in these statuses (queued, in_progress, completed, failed, cancelled, timed_out), "
                        "comma-separated")
    p.add_argument("--client", type=_client, metavar="NAME",
                   help="only the jobs this named client created (`goldgate client list`)")
    p.add_argument("--created-after", type=_after, metavar="TIME",
                   help="only jobs created after TIME (ISO 8601, UTC if no offset; strictly after, where `goldgate "
                        "cancel --created-after` takes those at or after it): it also bounds how far back the list is "
                        "read")
    p.add_argument("--limit", type=_jobs_limit, default=DEFAULT_JOBS_LIMIT, metavar="N",
                   help=f"show at most N jobs (default {DEFAULT_JOBS_LIMIT}, at most {MAX_JOBS_LIMIT}); the list is "
                        "read up to 200 at a time, 10,000 at most a run (with --status, only the jobs that match "
                        "are shown)")
    add_api_target(p)
    add_json_flag(p)

    p = add("checklist", "cmd_checklist",
            "the production-hardening checklist, every line checked with evidence")
    p.add_argument("stack", help="staging or prod (stacks/local.yaml; stacks/Pulumi.<stack>.yaml for the cloud)")
    p.add_argument("--offline", action="store_true",
                   help="skip the checks that need the running stack (webhook replay); they report n/a")
    p.add_argument("--reports-dir", help="golden reports (default scripts/golden-tests/reports)")
    p.add_argument("--logs-dir", help="cloud: a directory of exported JSON log lines (*.jsonl) to judge; the APIs "
                                      "give no logs")
    _add_cloud_flags(p, _CHECKLIST_CLOUD_HELP)
    add_json_flag(p)

    p = add("metrics", "cmd_metrics",
            "P50/P95/P99 queue, run and end-to-end time, error rate and cost, per release")
    p.add_argument("stack", help="staging or prod (stacks/local.yaml; stacks/Pulumi.<stack>.yaml for the cloud)")
    p.add_argument("--since", type=_since, help="only jobs created at or after this time (ISO 8601, UTC if no offset)")
    p.add_argument("--html", metavar="FILE", type=path_to_create,
                   help="also write an HTML report with charts to FILE")
    p.add_argument("--by-workflow-version", action="store_true",
                   help="also group the jobs by workflow version (counts, error rate, cost, mean run and end-to-end "
                        "time; a second table in the text and in --html, `by_workflow_version` in --json): one more "
                        "scan of every row")
    p.add_argument("--spend", action="store_true",
                   help="also show where the money went, for a cost spike: the spend per GPU type (biggest first) "
                        "and the 10 costliest jobs with their release, GPU and run time (text; `spend` in --json): "
                        "two more scans of every row")
    _add_cloud_flags(p, _METRICS_CLOUD_HELP)
    add_json_flag(p)
