"""A cloud deploy that reads its credentials from the stack's Pulumi secrets (no RUNPOD_API_KEY in the environment)
uses them, and writes none of them anywhere: not on its output, not in the ledger, not in the release log, not on a
`pulumi` command line. Run through the CLI, the `pulumi` stand-in and the RunPod emulator (tests/release), with a
Cloudflare API stand-in on loopback for the deploy's workers.dev check."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "release"))  # the cloud deploy test kit

from fixtures.release.pulumi_standin import encrypt
from release_support import invoke
from test_cloud_deployer import KEY, A, cloud_staging, emulator, make_project

from goldgate.local.runpod.emulator import RunPodEmulator

__all__ = ["emulator"]   # the fixture, used by name

SECRETS = {"goldgate:runpodApiKey": KEY,   # the emulator's own key: the deploy watches the rollout with it
           "goldgate:apiToken": "api-token-9d8c7b6a5f4e3d2c", "goldgate:webhookSecret": "whsec-1a2b3c4d5e6f7a8b",
           "goldgate:cloudflareApiToken": "cf-token-0f1e2d3c4b5a6978"}


@pytest.fixture
def cloudflare() -> Iterator[tuple[str, list[str]]]:
    """A Cloudflare API on loopback whose accounts have the workers.dev subdomain `example`: (base URL, the
    Authorization headers it was sent)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization") or "")
            ok = self.path.endswith("/workers/subdomain")
            body = json.dumps({"success": ok, "errors": [] if ok else [{"code": 7003, "message": "no route"}],
                               "messages": [], "result": {"subdomain": "example"} if ok else None}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_cloud_deploy_writes_no_secret_of_the_stack_config_anywhere(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: RunPodEmulator,
        cloudflare: tuple[str, list[str]]) -> None:
    project = make_project(tmp_path, emulator, monkeypatch)
    # The stand-in's `up` reaches RunPod with $RUNPOD_API_KEY, as the real program's provider does with the secret.
    cloud_staging(project, tmp_path, monkeypatch, f"RUNPOD_API_KEY={KEY}; export RUNPOD_API_KEY")
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)   # so goldgate reads the stack's own secret
    base, seen = cloudflare
    path = project / "stacks" / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].update({key: {"secure": encrypt(value)} for key, value in SECRETS.items()})
    doc["config"]["goldgate:cloudflareApiBase"] = base
    doc["config"]["goldgate:spec"]["api"]["public_base_url"] = "https://goldgate-api-staging.example.workers.dev"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    home = tmp_path / "home"

    code, out, err = invoke(capsys, "deploy", "staging", "--target", "cloud", "--home", str(home), "--image", A)
    assert code == 0, err
    assert "workers.dev subdomain example.workers.dev" in out + err   # the check ran, with the stack's token
    assert seen and all(h == f"Bearer {SECRETS['goldgate:cloudflareApiToken']}" for h in seen)
    history = invoke(capsys, "history", "--json", "--home", str(home))
    assert history[0] == 0, history[2]

    written = {"deploy output": out + err, "history --json": history[1] + history[2],
               "ledger": (home / "ledger.jsonl").read_text(),
               "pulumi command lines": (tmp_path / "pulumi-commands.jsonl").read_text()}
    written.update({f"log {p.name}": p.read_text() for p in (home / "logs").rglob("*") if p.is_file()})
    assert "ledger" in written and any(name.startswith("log ") for name in written)
    assert A in written["ledger"]   # the deploy is recorded
    leaks = [(where, key) for where, text in written.items() for key, value in SECRETS.items() if value in text]
    assert leaks == []
