"""The polling scan behind the checklist's "no code polls RunPod" line: a rename must not hide polling.

Each case is real polling code written the way a refactor writes it (a shorter name for the gateway, a
helper imported under another name, a bound method, recursion instead of a loop); before, each scanned clean.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from goldgate.ops.polling_scan import scan_source, scan_tree

SERVICE = Path(__file__).resolve().parents[2] / "service"

POLLING = {
    "the gateway under a short name": (
        "async def wait(app, rid):\n    rp = app.runpod\n    while True:\n        s = await rp.status(rid)\n"
        "        if s['status'] == 'COMPLETED':\n            return s\n"),
    "the gateway as a parameter": (
        "async def sweep(gateway, ids):\n    for rid in ids:\n        await gateway.status(rid)\n"),
    "the gateway on self": (
        "class Sweeper:\n    async def run(self, ids):\n        for rid in ids:\n            await self.pod.status(rid)\n"),
    "a bound method": (
        "async def wait(app, rid):\n    poll = app.runpod.status\n    while True:\n        if await poll(rid):\n"
        "            return\n"),
    "getattr": (
        "async def wait(app, rid):\n    while True:\n        if await getattr(app.runpod, 'status')(rid):\n"
        "            return\n"),
    "partial": (
        "from functools import partial\n\nasync def wait(app, rid):\n    check = partial(app.runpod.status, rid)\n"
        "    while not await check():\n        pass\n"),
    "map over the ids": (
        "import asyncio\n\nasync def sweep(app, ids):\n    await asyncio.gather(*map(app.runpod.status, ids))\n"),
    "a helper under another name": (
        "async def recover(app, rid):\n    return await app.runpod.status(rid)\n\n"
        "async def sweep(app, ids):\n    fix = recover\n    for rid in ids:\n        await fix(app, rid)\n"),
    "recursion instead of a loop": (
        "async def wait(app, rid):\n    s = await app.runpod.status(rid)\n    if s['status'] != 'COMPLETED':\n"
        "        return await wait(app, rid)\n    return s\n"),
    "a sleep imported under another name": (
        "from asyncio import sleep as nap\n\nasync def tick(app, rid):\n    await nap(5)\n"
        "    return await app.runpod.status(rid)\n"),
    "a helper handed to a JavaScript timer": (
        "from js import setInterval\nfrom pyodide.ffi import create_proxy\n\nasync def poll(app):\n"
        "    await app.runpod.status(app.rid)\n\ndef start(app):\n    setInterval(create_proxy(poll), 5000)\n"),
    "a helper handed to the event loop's timer": (
        "async def check(app, rid):\n    return await app.runpod.status(rid)\n\n"
        "def start(loop, app, rid):\n    loop.call_later(5, check, app, rid)\n"),
    "a RunPod URL built with %": (
        "async def peek(http, base, rid):\n    return await http.get('%s/status/%s' % (base, rid))\n"),
}


@pytest.mark.parametrize("source", POLLING.values(), ids=list(POLLING))
def test_polling_written_under_another_name_is_still_found(source):
    assert scan_source(source, "service/poller.py") != []


def test_a_loop_calling_the_recovery_helper_imported_under_another_name_is_found(tmp_path):
    service = tmp_path / "service"
    shutil.copytree(SERVICE, service, ignore=shutil.ignore_patterns("__pycache__"))
    (service / "sweeper.py").write_text(
        "from service.recover import recover_job as settle\n\n"
        "async def sweep(app, ids):\n    while ids:\n        await settle(app, ids.pop())\n")
    said = "service/sweeper.py:5: RunPod status call (through recover_job()) inside a loop (line 4)"
    assert scan_tree(service) == [said]


def test_the_service_itself_and_code_that_only_reads_a_status_field_stay_clean():
    assert scan_tree(SERVICE) == []
    reads = ("async def summarise(app, replies):\n    out = []\n    for reply in replies:\n"
             "        code = reply.status\n        out.append(str(reply.status) + getattr(reply, 'status', ''))\n"
             "    return [r.status for r in replies], '/api/status/' + out[0]\n")
    assert scan_source(reads, "service/summary.py") == []
