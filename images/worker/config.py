"""The worker's environment, read in this one place into a frozen value (docs/INTERFACES.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_COMFY_URL = "http://127.0.0.1:8188"
DEFAULT_MODEL_ROOTS = ("/comfyui/models", "/workspace/ComfyUI/models")
DEFAULT_OUTPUT_DIR = "/comfyui/output"
DEFAULT_INPUT_DIR = "/comfyui/input"
DEFAULT_READY_TIMEOUT_S = 300.0
DEFAULT_JOB_TIMEOUT_S = 600.0


class ConfigError(ValueError):
    """An environment variable is missing or malformed; the message names it and says what to set."""


@dataclass(frozen=True)
class StorageConfig:
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # the secret must not leak through a repr in a log or traceback
        return f"StorageConfig(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r}, access_key_id=***)"


@dataclass(frozen=True)
class WorkerConfig:
    workflow_version: str | None
    worker_image_tag: str | None
    stack: str | None
    storage: StorageConfig | None
    comfy_url: str
    comfy_ready_timeout_s: float
    comfy_job_timeout_s: float
    model_roots: tuple[str, ...]
    gpu_type: str | None
    # ComfyUI's output folder, where the worker removes each job's images once it has them.
    comfy_output_dir: str = DEFAULT_OUTPUT_DIR
    # ComfyUI's input folder, where `/upload/image` puts a job's input images and the worker removes them. Its own
    # setting: the local target's ComfyUI emulator keeps it apart from its output folder.
    comfy_input_dir: str = DEFAULT_INPUT_DIR
    # The ComfyUI process start.sh launched (COMFY_PID): once it has exited, waiting for it to answer is futile.
    comfy_pid: int | None = None
    # RunPod puts its API key in every worker's environment; only ever read here to mask it.
    runpod_api_key: str | None = field(default=None, repr=False)

    def require_storage(self) -> StorageConfig:
        if self.storage is None:
            raise ConfigError(
                "R2 storage is not configured: set R2_ENDPOINT_URL, R2_BUCKET, R2_ACCESS_KEY_ID and "
                "R2_SECRET_ACCESS_KEY in the endpoint's environment")
        return self.storage

    def secrets(self) -> tuple[str, ...]:
        """Values the logger, and any error the worker returns, must never show."""
        storage = (self.storage.access_key_id, self.storage.secret_access_key) if self.storage else ()
        return tuple(s for s in (*storage, self.runpod_api_key) if s)


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds; set e.g. {name}={int(default)}") from None
    if not (0 < value <= 86400):
        raise ConfigError(f"{name}={raw!r} must be between 0 and 86400 seconds")
    return value


def _storage(env: Mapping[str, str]) -> StorageConfig | None:
    names = ("R2_ENDPOINT_URL", "R2_BUCKET", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY")
    values = {n: _optional(env, n) for n in names}
    if not any(values.values()):
        return None
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise ConfigError(f"R2 storage is half configured: {', '.join(missing)} not set")
    endpoint = values["R2_ENDPOINT_URL"] or ""
    if not endpoint.startswith(("https://", "http://")):
        raise ConfigError(f"R2_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
    return StorageConfig(endpoint, values["R2_BUCKET"] or "", values["R2_ACCESS_KEY_ID"] or "",
                         values["R2_SECRET_ACCESS_KEY"] or "")


def _pid(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 10 or int(raw) < 1:  # Linux pids stay below 2**22
        raise ConfigError(f"{name}={raw!r} is not a process id; start.sh sets it to the ComfyUI process it launched")
    return int(raw)


def load_config(env: Mapping[str, str] | None = None) -> WorkerConfig:
    """Reads the worker environment. Storage may be absent (preflight needs none); jobs then fail clearly."""
    env = os.environ if env is None else env
    comfy_url = (_optional(env, "COMFY_URL") or DEFAULT_COMFY_URL).rstrip("/")
    if not comfy_url.startswith(("http://", "https://")):
        raise ConfigError(f"COMFY_URL must be an http(s) URL, got {comfy_url!r}")
    roots_raw = _optional(env, "MODEL_ROOTS")
    roots = tuple(r for r in roots_raw.split(":") if r) if roots_raw else DEFAULT_MODEL_ROOTS
    return WorkerConfig(
        workflow_version=_optional(env, "WORKFLOW_VERSION"),
        worker_image_tag=_optional(env, "WORKER_IMAGE_TAG"),
        stack=_optional(env, "STACK"),
        storage=_storage(env),
        comfy_url=comfy_url,
        comfy_ready_timeout_s=_seconds(env, "COMFY_READY_TIMEOUT_S", DEFAULT_READY_TIMEOUT_S),
        comfy_job_timeout_s=_seconds(env, "COMFY_JOB_TIMEOUT_S", DEFAULT_JOB_TIMEOUT_S),
        model_roots=roots,
        gpu_type=_optional(env, "GPU_TYPE"),
        comfy_output_dir=_optional(env, "COMFY_OUTPUT_DIR") or DEFAULT_OUTPUT_DIR,
        comfy_input_dir=_optional(env, "COMFY_INPUT_DIR") or DEFAULT_INPUT_DIR,
        comfy_pid=_pid(env, "COMFY_PID"),
        runpod_api_key=_optional(env, "RUNPOD_AI_API_KEY"),
    )
