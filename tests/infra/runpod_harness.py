"""The RunPod emulator on loopback for the dynamic providers' tests: it records every control-plane
request, so a test can validate each against RunPod's OpenAPI schema itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod.openapi import component, schema_errors
from goldgate.runpod import ControlPlaneClient

API_KEY = "rp_infra_test_key_0123456789"
IMG1 = "registry.example.com/example/goldgate-worker@sha256:" + "1" * 64
IMG2 = "registry.example.com/example/goldgate-worker@sha256:" + "2" * 64
REQUEST_SCHEMAS = {("POST", "/v2/serverless"): "CreateEndpointRequest",
                   ("PATCH", "/v2/serverless/"): "UpdateEndpointRequest",
                   ("POST", "/v2/registries"): "CreateRegistryRequest"}


def idle_launcher(image_ref: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    # These tests keep workers_min at 0, so no worker should start; if one does, it just waits to be stopped.
    return [sys.executable, "-c", "import time; time.sleep(30)"], env


class Emulator:
    def __init__(self, tmp: Path) -> None:
        self.emu = RunPodEmulator(EmulatorConfig(api_key=API_KEY, logs_dir=tmp / "logs"), launcher=idle_launcher)
        self.requests: list[tuple[str, str, Any]] = []
        app = self.emu._server.app  # record what reaches the wire, then let the emulator answer
        handle = app.handle

        def recording(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
            self.requests.append((method, target, json.loads(body) if body else None))
            return handle(method, target, headers, body)

        app.handle = recording

    def control(self) -> ControlPlaneClient:
        return ControlPlaneClient(API_KEY, self.emu.base_url)

    def invalid_requests(self) -> list[str]:
        problems = []
        for method, target, body in self.requests:
            for (m, prefix), schema in REQUEST_SCHEMAS.items():
                if method == m and (target == prefix or (prefix.endswith("/") and target.startswith(prefix))):
                    problems += [f"{method} {target}: {e}" for e in schema_errors(component(schema), body)]
        return problems
