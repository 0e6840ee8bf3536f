"""A deploy onto a stack whose host an older goldgate started, after the checkout was upgraded under it.

Seen upgrading a home of 50fb9b9 (its stacks up, database at 0003) to main: `goldgate up` refused and said to
restart, but `goldgate deploy staging` rolled out, and so did `goldgate rollback --to` on PROD. The redeploy
starts the API service anew from the upgraded checkout over the database the old host never migrated: every
POST /api/queue/create answered 500 ("table jobs has no column named policy_ttl_ms"), and the rollback's smoke
failed, recording a verified release as failed on PROD.
LocalPlatform.deploy now refuses as `up` does (require_migrated), naming the restart that applies them.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from goldgate.commands.local import ensure_up
from goldgate.errors import StateError
from goldgate.local.platform import LocalPlatform

ADDED = "0005_job_run_policy.sql"


def _as_an_older_host_left_it(db: Path) -> None:
    """The running stack's database, to this goldgate, as 50fb9b9's host left it: 0005 not applied. Its columns
    stay: the running service here is this goldgate's, standing in for the older one that never wrote them."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        with conn:
            conn.execute("DELETE FROM d1_migrations WHERE name = ?", (ADDED,))
    finally:
        conn.close()


def _create(platform: LocalPlatform) -> httpx.Response:
    status = platform.status("staging")
    with httpx.Client(base_url=status.api_url, timeout=30,
                      headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as client:
        return client.post("/api/queue/create",
                           json={"workflow_id": "sdxl-txt2img", "inputs": {"prompt": f"upgrade {time.time_ns()}"}})


def test_a_deploy_onto_a_host_an_older_goldgate_started_is_refused_and_the_stack_keeps_taking_jobs(own_platform):
    before = ensure_up(own_platform, "staging")
    _as_an_older_host_left_it(own_platform.db_path("staging"))

    try:
        own_platform.deploy("staging", before.image)
    except StateError as refused:
        said = str(refused)
    else:
        said = "(deployed)"

    assert f"migrations not applied: {ADDED}" in said and "`goldgate down staging && goldgate up staging`" in said
    assert _create(own_platform).status_code == 202
