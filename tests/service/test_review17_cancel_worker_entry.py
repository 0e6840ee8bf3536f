"""`POST /api/cancel/<job_id>` through the Cloudflare Worker entry (service/cloudflare_entry.py) over the
stand-ins for its bindings: the route needs nothing of its own there. Its RunPod call goes out through
`fetch` with the key, its answer lands in D1, and a client that disconnects while RunPod answers does not
cut the cancel off between RunPod stopping the job and D1 recording it (POSTs run under ctx.waitUntil)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from service_testkit import API_TOKEN, RUNPOD_KEY
from test_review17_cancel_route import CancellingRunPod
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, _entry, make_env

AUTH = {"authorization": f"Bearer {API_TOKEN}"}
CREATE = json.dumps({"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode()


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Any:  # the Worker entry over the runtime's stand-ins
    yield from _entry(monkeypatch, with_jsnull=True)


@pytest.fixture
def fake_runpod():
    fake = CancellingRunPod(RUNPOD_KEY).start()
    yield fake
    fake.stop()


class HeldCancel(Fetch):
    """`fetch` whose /cancel answer is held back after RunPod stopped the job, until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.taken, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, url: str, init: dict) -> Any:
        reply = await super().__call__(url, init)
        if "/cancel/" in url:
            self.taken.set()
            await self.release.wait()
        return reply


def _lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_the_worker_cancels_a_job_through_fetch_and_d1(entry, tmp_path, fake_runpod, capsys, log_lines):
    env, fetch = make_env(tmp_path, fake_runpod.base), Fetch()
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=fetch)

    async def scenario() -> tuple[int, dict, int, dict]:
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", CREATE, AUTH))
        job_id = json.loads(created.body)["job_id"]
        cancelled = await worker.fetch(
            JsRequest("POST", f"https://api.example/api/cancel/{job_id}", b"", AUTH)
        )
        again = await worker.fetch(JsRequest("POST", f"https://api.example/api/cancel/{job_id}", b"", AUTH))
        return cancelled.status, json.loads(cancelled.body), again.status, json.loads(again.body)

    status, body, again_status, again = asyncio.run(scenario())
    log_lines.extend(_lines(capsys))
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    assert (status, body["cancelled"], body["status"], body["runpod_status"]) == (
        200,
        True,
        "cancelled",
        "CANCELLED",
    )
    assert (again_status, again["cancelled"], again["reason"]) == (200, False, "already_ended")
    cancels = [(url, init) for url, init in fetch.calls if "/cancel/" in url]
    assert [url for url, _ in cancels] == [
        f"{fake_runpod.base}/cancel/{rid}"
    ]  # once: the second asked nothing
    assert (
        cancels[0][1]["method"] == "POST"
        and cancels[0][1]["headers"]["authorization"] == f"Bearer {RUNPOD_KEY}"
    )
    assert env.DB.conn.execute("SELECT status FROM jobs").fetchone()[0] == "cancelled"
    assert env.DB.conn.execute("SELECT status, images FROM job_metrics").fetchall() == [("cancelled", 0)]


def test_a_cancel_whose_client_disconnects_while_runpod_answers_is_still_recorded(
    entry, tmp_path, fake_runpod, capsys, log_lines
):
    env, ctx = make_env(tmp_path, fake_runpod.base), Ctx()
    worker = entry.Default(ctx, env)

    async def scenario() -> None:
        fetch = HeldCancel()
        entry.Default._app = entry.build_app(env, fetch=fetch)
        created = await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", CREATE, AUTH))
        await asyncio.gather(*ctx.waiting)
        job_id = json.loads(created.body)["job_id"]
        client = asyncio.ensure_future(
            worker.fetch(JsRequest("POST", f"https://api.example/api/cancel/{job_id}", b"", AUTH))
        )
        await asyncio.wait_for(fetch.taken.wait(), 30)  # RunPod has the cancel (never hangs the suite)
        client.cancel()  # the client disconnects: RunPod has stopped the job, D1 does not know yet
        with pytest.raises(asyncio.CancelledError):
            await client
        fetch.release.set()
        await asyncio.gather(*ctx.waiting)  # what the runtime still lets finish

    asyncio.run(scenario())
    log_lines.extend(_lines(capsys))
    assert env.DB.conn.execute("SELECT status FROM jobs").fetchone()[0] == "cancelled"
    assert len(fake_runpod.cancel_calls) == 1
