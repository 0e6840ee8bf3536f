"""`goldgate jobs <stack>`: a stack's jobs, newest first, read through its API's `GET /api/jobs` with the API token, as
`goldgate cancel` reaches the API (a local stack's, or a cloud one's with --target cloud)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from goldgate.commands.ops_args import MAX_JOBS_LIMIT
from goldgate.commands.output import emit, table
from goldgate.errors import GoldgateError

# The most GET /api/jobs serves a page (service.joblist.MAX_LIMIT): fewer round trips for a long walk.
PAGE_SIZE = 200
# A walk reads at most this many pages (10,000 jobs): a status filter shows only the jobs of each page that match, so
# a list of rare statuses is a walk of pages that show little or nothing; --created-after bounds the walk itself.
MAX_PAGES = 50
COLUMNS = ["job_id", "status", "workflow", "client", "created", "finished"]


@dataclass(frozen=True)
class Walk:
    """What the pages read gave: the jobs (at most the limit, newest first), whether the list goes on past them, the
    API's cursor to read on from the last one shown (None when the list ended, or a page's jobs were cut), and the
    jobs read when the page bound stopped the walk (None when it did not)."""

    jobs: list[dict[str, Any]]
    more: bool
    next_cursor: str | None
    stopped_after: int | None = None


def cmd_jobs(args: argparse.Namespace) -> int:
    from goldgate.commands.local import _platform, stack_api

    if args.target != "cloud":
        _platform(args).spec(args.stack)  # an unknown stack is refused here, with the stacks the file has
    query = {name: value for name, value in (("status", args.status), ("client", args.client),
                                             ("created_after", args.created_after)) if value is not None}
    api = stack_api(args, args.stack)  # a stack that is not up is refused here, before any request
    try:
        walk = read_jobs(lambda params: api.call("GET", "/api/jobs", params=params), query, args.limit)
    except GoldgateError as exc:
        if "answered 404" not in str(exc):
            raise
        # the route came with this release: a service started before it has none
        redeploy = (f"`pulumi up --stack {args.stack}`" if args.target == "cloud"
                    else f"`goldgate down {args.stack} && goldgate up {args.stack}`")
        raise GoldgateError(f"{exc}; the stack's service predates GET /api/jobs: deploy this release to it "
                            f"({redeploy})") from None
    finally:
        api.close()
    data = {"jobs": walk.jobs, "more": walk.more, "next_cursor": walk.next_cursor}
    emit(args, data, lambda d: render_text(d, args.stack, walk.stopped_after))
    return 0


def read_jobs(get: Callable[[dict[str, str]], dict[str, Any]], query: dict[str, str], limit: int) -> Walk:
    """Follow next_cursor until `limit` jobs are read, the list ends, or MAX_PAGES pages were read. Without a status
    filter a page asks for what is still needed (each job it reads is shown, so the cursor after it is exact); with
    one it asks for a whole page, and the jobs past the limit are cut (and no cursor points between them)."""
    jobs: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        wanted = limit - len(jobs)
        size = PAGE_SIZE if "status" in query else min(PAGE_SIZE, wanted)
        page = get({**query, "limit": str(size), **({"cursor": cursor} if cursor else {})})
        found, cursor = page.get("jobs") or [], page.get("next_cursor")
        if len(found) > wanted:
            return Walk(jobs + found[:wanted], True, None)
        jobs += found
        if cursor is None or len(jobs) == limit:
            return Walk(jobs, cursor is not None, cursor)
    return Walk(jobs, True, cursor, stopped_after=MAX_PAGES * PAGE_SIZE)


def render_text(data: dict[str, Any], stack: str, stopped_after: int | None) -> str:
    rows = [{"job_id": j.get("job_id"), "status": j.get("status"), "workflow": j.get("workflow_id"),
             "client": j.get("client"), "created": j.get("created_at"), "finished": j.get("finished_at")}
            for j in data["jobs"]]
    shown = len(rows)
    noun = "job" if shown == 1 else "jobs"
    if stopped_after is not None:
        last = (f"{shown} {noun} shown, newest first; stopped after reading {stopped_after} jobs of {stack}: "
                "narrow with --created-after")
    elif data["more"]:
        raise_limit = f"raise --limit (at most {MAX_JOBS_LIMIT}) or " if shown < MAX_JOBS_LIMIT else ""
        last = (f"{shown} {noun} shown, newest first; the list goes on: {raise_limit}narrow with --status, --client or "
                "--created-after")
    else:
        last = f"{shown} {noun} shown, newest first; no more on {stack}" if shown else f"no job on {stack} matches"
    return (table(rows, COLUMNS) + "\n" if rows else "") + last
