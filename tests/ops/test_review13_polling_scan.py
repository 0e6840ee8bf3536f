"""The polling scan behind the checklist's "no automated polling in the live flow" line: each case below is polling
code a refactor could write, and each scanned clean before (a lambda, a URL kept in a module constant or written
without its slash, RunPod's /stream/, a timer's callback by keyword, a callback rescheduling itself, a loop inside
the client's own status method)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from goldgate.ops.polling_scan import scan_source, scan_tree

SERVICE = Path(__file__).resolve().parents[2] / "service"

POLLING = {
    "a lambda calling the gateway": (
        ("async def wait(app, rid):\n    poll = lambda: app.runpod.status(rid)\n    while True:\n"
         "        if await poll():\n            return\n"),
        "service/x.py:4: RunPod status call inside a loop (line 3)"),
    "the URL in a module-level constant": (
        ("STATUS = '{}/status/{}'\n\nasync def wait(http, base, rid):\n    while True:\n"
         "        r = await http.get(STATUS.format(base, rid))\n        if r.ok:\n            return r\n"),
        "service/x.py:1: a RunPod /status/ URL is built at module level, outside the RunPod client's status method"),
    "the URL relative to a client's base URL": (
        ("async def wait(http, rid):\n    while True:\n        r = await http.get(f'status/{rid}')\n"
         "        if r.ok:\n            return r\n"),
        "service/x.py:3: a RunPod /status/ URL is built in wait(), outside the RunPod client's status method"),
    "RunPod's /stream/ endpoint": (
        ("async def wait(app, rid):\n    while True:\n        r = await app.runpod._call('GET', '/stream/' + rid, None)\n"
         "        if r.get('status') == 'COMPLETED':\n            return r\n"),
        "service/x.py:3: a RunPod /stream/ URL is built in wait(), outside the RunPod client's status method"),
    "a timer's callback given by keyword": (
        ("import threading\n\ndef poll(app):\n    app.runpod.status(app.rid)\n\ndef begin(app):\n"
         "    threading.Timer(5, function=poll, args=(app,)).start()\n"),
        "service/x.py:7: RunPod status call (through poll()) in begin(), which also sleeps or schedules itself"),
    "a callback that reschedules itself": (
        "def tick(loop, app):\n    app.runpod.status(app.rid)\n    loop.call_soon(tick, loop, app)\n",
        "service/x.py:2: RunPod status call in tick(), which calls itself again: it repeats like a loop"),
    "a loop inside the client's status method": (
        ("class RunPod:\n    async def status(self, rid):\n        while True:\n"
         "            r = await self._call('GET', '/status/' + rid, None)\n            if r['status'] != 'IN_QUEUE':\n"
         "                return r\n"),
        "service/x.py:2: the RunPod client's status method status() loops, sleeps or calls itself: it must ask once"),
}


@pytest.mark.parametrize(("source", "said"), POLLING.values(), ids=list(POLLING))
def test_polling_the_scan_missed_is_found_and_named(source, said):
    assert said in scan_source(source, "service/x.py")


def test_a_module_constant_url_is_found_in_a_copy_of_the_service_which_itself_stays_clean(tmp_path):
    assert scan_tree(SERVICE) == []  # service/runpod.py's docstring names /status/{id}: prose, not a URL
    service = tmp_path / "service"
    shutil.copytree(SERVICE, service, ignore=shutil.ignore_patterns("__pycache__"))
    (service / "watch.py").write_text('"""Waits on /status/ by design."""\n\nSTREAM = "stream/{}"\n\n'
                                      "async def watch(app, rid):\n    while True:\n"
                                      "        await app.http.get(STREAM.format(rid))\n")
    assert scan_tree(service) == [("service/watch.py:3: a RunPod /stream/ URL is built at module level, outside the "
                                   "RunPod client's status method")]


def test_the_api_routes_own_status_path_and_prose_stay_clean():
    own = ('"""GET /status/{id} is RunPod\'s; ours is /api/status/<job>."""\n\nROUTE = "/api/status/"\n\n'
           "def route(job_id):\n    \"\"\"Answers /api/status/{job}, never RunPod's /status/.\"\"\"\n"
           "    return ROUTE + job_id, 'api/status/' + job_id\n")
    assert scan_source(own, "service/routes.py") == []
