"""The checklist's polling scan reads each module's syntax tree once: it used to walk every module again for
each rule, and again under each loop and function (about ten walks a module, most of a checklist run's
0.4-0.7 s of scan). What it finds must not change: on a crafted service tree that trips every rule, the
findings are the very lines the scan gave before, down to which status call a function's finding names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from goldgate.ops import polling_scan

MODULES = {
    "recover.py": (
        "from asyncio import sleep as nap\n\n"
        "async def recover_job(app, rid):\n"
        "    return await app.runpod.status(rid)\n\n"
        "async def wait(app, rid):\n"
        "    if rid:\n"
        "        if app.ready:\n"
        "            await app.runpod.status(rid)\n"  # deeper, though first in the file
        "    await recover_job(app, rid)\n"  # the shallowest: the one a function's finding names
        "    await nap(5)\n"),
    "sweep.py": (
        '"""Sweeps on /status/ by design (prose, not a URL)."""\n\n'
        "from functools import partial\n"
        "from service.recover import recover_job as settle\n\n"
        "STREAM = 'stream/{}'\n\n"
        "async def sweep(app, ids):\n"
        "    for rid in ids:\n"
        "        await settle(app, rid)\n"
        "    return [app.client.get_status(r) for r in ids] + list(map(app.runpod.status, ids))\n\n"
        "def tick(loop, app):\n"
        "    check = partial(app.runpod.status, app.rid)\n"
        "    check()\n"
        "    loop.call_soon(tick, loop, app)\n\n"
        "async def scheduled(event, env, ctx):\n"
        "    poll = getattr(env.runpod, 'status')\n"
        "    await poll(event.rid)\n"),
    "runpod.py": (
        "class RunPod:\n"
        "    async def status(self, rid):\n"
        "        while True:\n"
        "            reply = await self._call('GET', f'/status/{rid}')\n"
        "            if reply['status'] != 'IN_QUEUE':\n"
        "                return reply\n\n"
        "    async def cancel(self, rid):\n"
        "        return await self._call('POST', '/stream/' + rid)\n"),
}

FOUND = [
    ("service/recover.py:10: RunPod status call (through recover_job()) in wait(), which also sleeps or "
     "schedules itself"),
    ("service/runpod.py:2: the RunPod client's status method status() loops, sleeps or calls itself: "
     "it must ask once"),
    ("service/runpod.py:9: a RunPod /stream/ URL is built in cancel(), outside the RunPod client's "
     "status method"),
    "service/sweep.py:10: RunPod status call (through recover_job()) inside a loop (line 9)",
    "service/sweep.py:11: RunPod status call inside a loop (line 11)",
    "service/sweep.py:15: RunPod status call in tick(), which calls itself again: it repeats like a loop",
    "service/sweep.py:20: RunPod status call in the scheduled handler scheduled()",
    ("service/sweep.py:6: a RunPod /stream/ URL is built at module level, outside the RunPod client's "
     "status method"),
]


def _service(tmp_path: Path) -> Path:
    service = tmp_path / "service"
    service.mkdir()
    for name, text in MODULES.items():
        (service / name).write_text(text)
    return service


def test_the_scan_reads_each_module_once_and_finds_what_it_found_before(tmp_path, monkeypatch):
    service = _service(tmp_path)
    read = [0]  # syntax-tree nodes handed out by ast.walk and ast.iter_child_nodes while the scan runs
    walk, children = ast.walk, ast.iter_child_nodes

    def counted_walk(node: ast.AST) -> Iterator[ast.AST]:
        for found in walk(node):
            read[0] += 1
            yield found

    def counted_children(node: ast.AST) -> Iterator[ast.AST]:
        for found in children(node):
            read[0] += 1
            yield found

    # One reading of the trees, to size what the scan may read: every node once.
    size = sum(1 for text in MODULES.values() for _ in walk(ast.parse(text)))
    monkeypatch.setattr(ast, "walk", counted_walk)
    monkeypatch.setattr(ast, "iter_child_nodes", counted_children)
    found = polling_scan.scan_tree(service)
    monkeypatch.undo()
    assert found == FOUND
    assert read[0] <= size, f"the scan read {read[0]} syntax-tree nodes of {size}: it walked them again"
