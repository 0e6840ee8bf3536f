"""Fixtures for the infra tests: filled-in stack files in a temp dir and a small Worker bundle."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra_harness import filled_stack_file
from runpod_harness import Emulator

from infra.worker_bundle import WorkerBundle, collect

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def main_thread_event_loop() -> Iterator[None]:
    """Pulumi's mocks create futures on the thread's current event loop; a test that ran `asyncio.run`
    before (the metrics report does, in tests/ops) leaves the main thread without one. After the test, every
    Output it created on that loop is settled (`settle_outputs`)."""
    policy = asyncio.get_event_loop_policy()
    try:
        loop = policy.get_event_loop()
    except RuntimeError:
        loop = policy.new_event_loop()
        policy.set_event_loop(loop)
    yield
    settle_outputs(loop)


def settle_outputs(loop: asyncio.AbstractEventLoop) -> None:
    """Run to their end the tasks a test left on the loop: the Outputs, and the mocks' resource registrations, that
    it created outside a `pulumi.runtime.test` program (`read_config`, `run` or `set_mocks` called directly, or a
    program that raised). Left pending they would sit on the loop until it is dropped, at a later test of the worker
    or at its exit, and be reported there as coroutines "never awaited"; and the mocks' root stack, left unregistered,
    fails every later program of the worker that runs on another loop ("attached to a different loop")."""
    if loop.is_closed():
        return
    failed: list[BaseException] = []
    while pending := [task for task in asyncio.all_tasks(loop) if not task.done()]:
        results = loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        failed += [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    assert not failed, f"Outputs the test left unsettled failed when settled: {failed!r}"


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    out = tmp_path / "stacks"
    out.mkdir()
    for stack in ("staging", "prod"):
        (out / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(filled_stack_file(stack)))
    return out


@pytest.fixture
def bundle(tmp_path: Path) -> WorkerBundle:
    service = tmp_path / "service"
    service.mkdir()
    (service / "__init__.py").write_text("")
    (service / "app.py").write_text("def create_app():\n    return None\n")
    (service / "cloudflare_entry.py").write_text("class Default:\n    pass\n")
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "sdxl-txt2img.json").write_text(json.dumps({"id": "sdxl-txt2img", "version": "sdxl-txt2img@1.0.0"}))
    return collect(service, workflows)


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_cloudflare warns about its own deprecated resources on import; none of them are used here.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_cloudflare.*")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A coroutine never awaited in an infra test (or in infra/ under it) fails that test: every Output a test
    creates is settled (`settle_outputs`), so such a warning is a real defect, not the mocks' leftovers. An
    unawaited coroutine's warning is raised where Python cannot raise it (the coroutine's finalizer), so it
    reaches pytest as an unraisable exception, hence the second filter."""
    for item in items:
        if item.path.is_relative_to(HERE):  # this hook sees the whole session's items
            item.add_marker(pytest.mark.filterwarnings("error::RuntimeWarning",
                                                       "error::pytest.PytestUnraisableExceptionWarning"),
                            append=False)  # a test's own filterwarnings mark still wins


@pytest.fixture
def runpod(tmp_path: Path) -> Iterator[Emulator]:
    """The RunPod emulator on loopback (runpod_harness), stopped after the test."""
    emulator = Emulator(tmp_path)
    emulator.emu.start()
    try:
        yield emulator
    finally:
        emulator.emu.stop()


class _Stub(BaseHTTPRequestHandler):
    status = 503

    def _answer(self) -> None:
        body = json.dumps({"title": "stub", "status": self.status, "detail": "stub control plane"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def stub() -> Iterator[Any]:
    """A control plane on loopback answering every request with one status (set `.status`)."""

    class Handler(_Stub):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.handler = Handler  # type: ignore[attr-defined]
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
