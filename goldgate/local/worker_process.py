"""A local RunPod worker: the ComfyUI emulator over a snapshot's models, preflight, then the snapshot's
handler under the real `runpod` SDK loop (cloud mode when the RunPod emulator set RUNPOD_WEBHOOK_*).

    python -m goldgate.local.worker_process --snapshot DIR [-- <runpod SDK args, e.g. --test_input JSON>]

Environment: the worker's (docs/INTERFACES.md); COMFY_URL, MODEL_ROOTS, COMFY_OUTPUT_DIR and COMFY_INPUT_DIR are
set here (`image_env`).
COMFY_EMULATOR_STARTUP_S plays a cold start (seconds before the emulator listens; default 0.2).
COMFY_EMULATOR_RENDER_S plays a slow render (seconds each prompt takes; default 0): a drill's long job.
COMFY_EMULATOR_HOLD_DIR (an existing directory) gates renders: each prompt renders on until the file
`<dir>/release` exists (an /interrupt still stops it at once), so a drill holds a job mid-run until it has
done its act; deleting `release` holds the prompts that start after.
GOLDGATE_LIFELINE_FD (set by the emulator's fleet): the worker ends with the process that started it.
Exit status: 2 not a snapshot or a bad setting, 3 preflight failed, 4 a snapshot module failed to import;
each with one v1 line on stderr saying why.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import signal
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from goldgate.local import lifeline
from goldgate.local.comfyui import ComfyUIEmulator
from goldgate.logs import JsonLogger

DEFAULT_STARTUP_S = 0.2
PACKAGE = "worker"  # the snapshot's package directory name


MAX_MESSAGE_CHARS = 4000  # logging-schema-v1 `message`
# The worker's credentials by their names, as the RunPod emulator masks an endpoint's env in a job's error: a snapshot
# module that fails at import with its setting in the message must not print the R2 secret in the worker's log.
_CREDENTIAL = re.compile(r"SECRET|TOKEN|PASSWORD|PASSPHRASE|KEY", re.IGNORECASE)
MIN_CREDENTIAL_CHARS = 6  # shorter values ("1", "true") would mask ordinary words, and no credential is that short


class _Terminated(SystemExit):
    pass


class _BadSetting(ValueError):
    """A launcher setting is wrong; the message names it."""


class _ImportFailed(RuntimeError):
    """A module of the snapshot raised while being imported (a broken image); the message holds the traceback."""


def _import(name: str, snapshot: Path) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 -- any error in an image's module is the image's, reported as one
        cause = traceback.format_exception_only(exc)[-1].strip()
        frames = "".join(traceback.format_exception(exc)[-8:])
        raise _ImportFailed(f"worker_process: cannot import {name} from {snapshot}: {cause}\n{frames}") from None


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated(0)


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise _BadSetting(f"worker_process: {name}={raw!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise _BadSetting(f"worker_process: {name} must be >= 0 seconds")
    return value


def _hold_dir(name: str) -> Path | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not Path(raw).is_dir():  # a mistyped gate would hold every job forever
        raise _BadSetting(f"worker_process: {name}={raw!r} is not a directory")
    return Path(raw)


def _credentials() -> tuple[str, ...]:
    """The values of this worker's credentials (R2 keys, RunPod's worker key, any the endpoint's env adds)."""
    return tuple(value.strip() for name, value in os.environ.items()
                 if _CREDENTIAL.search(name) and len(value.strip()) >= MIN_CREDENTIAL_CHARS)


def _refuse(log: JsonLogger, event: str, message: str, code: int) -> int:
    """Why this worker will not start, as one v1 line on stderr (the process output is a worker log)."""
    log.error(event, message=message[:MAX_MESSAGE_CHARS])
    return code


def _cpu_model_name(path: str = "/proc/cpuinfo") -> str | None:
    """/proc/cpuinfo's first `model name`, or None (not Linux, or a CPU that names none there, e.g. most ARM)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        return None
    return None


# Modules the SDK imports at its own import for its CLI only (`runpod ssh`, `runpod pod`): never used by a
# worker.
_CLI_ONLY_MODULES = ("paramiko",)


class _ImportedOnFirstUse(ModuleType):
    """Stands in sys.modules for a module not imported yet: `import name` finds it and binds it at no cost,
    and the first attribute it lacks imports the real module (which takes its place in sys.modules) and
    answers from it. Its namespace then becomes the real one's, so code holding the stand-in uses the real
    module from there on. (importlib.util.LazyLoader is no help here before Python 3.12: the next `import
    name` reads `__spec__`, which runs the module.)"""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def _import_lazily(name: str) -> None:
    """Make `import name` cheap until the module is used (_ImportedOnFirstUse). Nothing is done for a module
    already imported or not installed."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    stand_in = _ImportedOnFirstUse(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in


def import_runpod_sdk() -> None:
    """Import the runpod SDK, as the handler's main() does first, without py-cpuinfo's probe of the CPU, and
    without running paramiko's import, which only the SDK's CLI uses.

    At import the SDK asks py-cpuinfo for the CPU's name (runpod/serverless/utils/rp_debugger.py: shown only in its
    debugger's output). py-cpuinfo answers by starting a Python process that runs lscpu and dmesg and probes CPUID in
    yet another: about 1.2 s of CPU, half of a local worker's start, paid again by every worker of a fleet that
    shares one host. On Linux the name it reports is /proc/cpuinfo's `model name`, its first source: the SDK is
    handed that while it imports. Elsewhere, or without py-cpuinfo, the SDK imports as it always does.
    The SDK's http_client imports its CLI's config functions, whose package imports the `runpod ssh` commands,
    which import paramiko (and with it cryptography and invoke): about 0.25 s of CPU per worker for a module
    the serverless loop never touches. paramiko is imported on first use (_import_lazily): it runs only if
    something uses it."""
    for name in _CLI_ONLY_MODULES:
        _import_lazily(name)
    name = _cpu_model_name()
    try:
        import cpuinfo
    except ImportError:
        cpuinfo = None
    if name is None or cpuinfo is None or not callable(getattr(cpuinfo, "get_cpu_info", None)):
        import runpod
        return
    probe = cpuinfo.get_cpu_info
    cpuinfo.get_cpu_info = lambda: {"brand_raw": name}
    try:
        import runpod  # noqa: F401
    finally:
        cpuinfo.get_cpu_info = probe


def image_env(emulator: ComfyUIEmulator, models_dir: Path) -> dict[str, str]:
    """The worker image's own wiring pointed at the started `emulator`: its address, its models, and its output and
    input folders, which the handler empties of each job's images. The emulator keeps the two folders apart (not
    side by side as /comfyui/output and /comfyui/input are in the image), so each is named."""
    return {"COMFY_URL": emulator.url, "MODEL_ROOTS": str(models_dir),
            "COMFY_OUTPUT_DIR": str(emulator.output_dir), "COMFY_INPUT_DIR": str(emulator.backend.dirs["input"])}


def main(argv: list[str] | None = None) -> int:
    lifeline.watch()  # first: a worker whose emulator is gone must not live on, even while it boots
    argv = list(sys.argv[1:] if argv is None else argv)
    sdk_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, sdk_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="goldgate.local.worker_process")
    parser.add_argument("--snapshot", type=Path, required=True, help="a local image snapshot directory")
    args = parser.parse_args(argv)
    snapshot = args.snapshot.resolve()
    # The stack's release version (the stacks file's `workflow_version`), as on the orchestrator's other lines.
    context = {"stack": os.environ.get("STACK") or None, "worker_image_tag": os.environ.get("WORKER_IMAGE_TAG") or None,
               "workflow_version": os.environ.get("WORKFLOW_VERSION") or None}
    credentials = _credentials()
    log = JsonLogger("orchestrator", secrets=credentials, **context)
    refusal = JsonLogger("orchestrator", sys.stderr, secrets=credentials, **context)
    if not (snapshot / PACKAGE / "handler.py").is_file() or not (snapshot / "models").is_dir():
        return _refuse(refusal, "local_worker_refused", f"worker_process: {snapshot} is not a worker snapshot "
                                                        f"(needs {PACKAGE}/handler.py and models/)", 2)
    try:
        startup_delay = _seconds("COMFY_EMULATOR_STARTUP_S", DEFAULT_STARTUP_S)
        render_delay = _seconds("COMFY_EMULATOR_RENDER_S", 0.0)
        hold_dir = _hold_dir("COMFY_EMULATOR_HOLD_DIR")
    except _BadSetting as exc:
        return _refuse(refusal, "local_worker_refused", str(exc), 2)
    signal.signal(signal.SIGTERM, _on_sigterm)  # until the SDK installs its own graceful handler
    emulator = ComfyUIEmulator(snapshot / "models", startup_delay_s=startup_delay, render_delay_s=render_delay,
                               stack=context["stack"], worker_image_tag=context["worker_image_tag"], hold_dir=hold_dir)
    try:
        emulator.start()
        os.environ.update(image_env(emulator, snapshot / "models"))
        # No GPU and no RunPod host here: the SDK's fitness checks would kill the worker.
        os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
        os.environ.setdefault("RUNPOD_SKIP_GPU_CHECK", "true")
        sys.path.insert(0, str(snapshot))
        preflight = _import(f"{PACKAGE}.preflight", snapshot)
        logs = _import(f"{PACKAGE}.logs", snapshot)
        report = preflight.run_preflight(snapshot / PACKAGE / "models.yaml", snapshot / PACKAGE / "workflows",
                                         [snapshot / "models"])
        preflight.log_report(report, logs.WorkerLog(secrets=credentials, stack=os.environ.get("STACK") or None,
                                                    worker_image_tag=os.environ.get("WORKER_IMAGE_TAG") or None,
                                                    workflow_version=os.environ.get("WORKFLOW_VERSION") or None))
        if not report.ok:
            return _refuse(refusal, "local_worker_preflight_failed",
                           f"worker_process: preflight failed, not starting the handler:\n{report.render_text()}", 3)
        log.info("local_worker_starting", message=f"snapshot {snapshot}, ComfyUI emulator at {emulator.url}")
        handler = _import(f"{PACKAGE}.handler", snapshot)
        sys.argv = [sys.argv[0], *sdk_args]
        import_runpod_sdk()
        handler.main()
        return 0
    except _ImportFailed as exc:
        return _refuse(refusal, "local_worker_import_failed", str(exc), 4)
    except _Terminated:
        return 0
    finally:
        emulator.stop()
        log.info("local_worker_stopped")


if __name__ == "__main__":
    # The SDK's own exit (its SIGTERM handler, a refused job loop) ends the worker too.
    try:
        status: object = main()
    except SystemExit as exc:
        status = exc.code
    lifeline.exit_now(status)  # emulator and SDK stopped by now: no interpreter teardown to pay
