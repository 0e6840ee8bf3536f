"""Helpers for the worker tests: sparse model trees, schema-checked log capture, S3 client, job builder."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import jsonschema
from botocore.config import Config

from images.worker.config import StorageConfig
from images.worker.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
WORKER_DIR = REPO / "images" / "worker"
FIXTURES = REPO / "tests" / "fixtures" / "worker"
SCHEMA = json.loads((REPO / "docs" / "logging-schema-v1.json").read_text())
TRACE_ID = "0123456789abcdef0123456789abcdef"
ACCESS_KEY = "AKIDGOLDGATETEST0001"
SECRET_KEY = "s3cr3t-goldgate-test-value-never-logged"


def bake_models(root: Path, skip: tuple[str, ...] = (), manifest: Path = WORKER_DIR / "models.yaml") -> Path:
    """The manifest's files as sparse files of their manifest size (like a local image snapshot)."""
    for model in load_manifest(manifest).models:
        if model.file in skip:
            continue
        path = root / model.directory / model.file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.truncate(model.size or 1)
    return root


def validate_log_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line is one schema-v1 JSON object; returns them parsed."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    lines = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)
        errors = sorted(validator.iter_errors(line), key=str)
        assert not errors, f"log line fails schema v1: {errors[0].message}: {raw}"
        lines.append(line)
    return lines


class LogCapture(io.StringIO):
    def lines(self) -> list[dict[str, Any]]:
        return validate_log_lines(self.getvalue())

    def events(self) -> list[str]:
        return [line["event"] for line in self.lines()]


def s3_client(endpoint: str):  # boto3 clients have no static type
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def worker_env(comfy_url: str, storage: StorageConfig | None, models: Path, **extra: str) -> dict[str, str]:
    env = {"COMFY_URL": comfy_url, "MODEL_ROOTS": str(models), "WORKER_IMAGE_TAG": "local/worker@sha256:" + "ab" * 32,
           "WORKFLOW_VERSION": "sdxl-txt2img@1.0.0,flux-schnell-lora@1.0.0", "STACK": "local",
           "GPU_TYPE": "NVIDIA GeForce RTX 4090", "COMFY_READY_TIMEOUT_S": "10", "COMFY_JOB_TIMEOUT_S": "20"}
    if storage is not None:
        env.update({"R2_ENDPOINT_URL": storage.endpoint_url, "R2_BUCKET": storage.bucket,
                    "R2_ACCESS_KEY_ID": storage.access_key_id, "R2_SECRET_ACCESS_KEY": storage.secret_access_key})
    env.update(extra)
    return env


def job(inputs: dict[str, Any] | None = None, workflow: str = "sdxl-txt2img", job_id: str = "job-1",
        **overrides: Any) -> dict[str, Any]:
    payload = {"workflow_id": workflow, "workflow_version": f"{workflow}@1.0.0",
               "inputs": {"prompt": "a lighthouse at dusk"} if inputs is None else inputs,
               "job_id": job_id, "trace_id": TRACE_ID, "result_prefix": f"results/{job_id}/"}
    payload.update(overrides)
    return {"id": f"rp-{job_id}", "input": payload}

