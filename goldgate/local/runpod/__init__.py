"""The local RunPod emulator (moto-style): REST v2 control plane, serverless data plane, the worker URLs
the real `runpod` SDK loop calls, webhooks, and fault injection. See `emulator.RunPodEmulator`.

Modules: config (settings, faults), backend (state and rules), responses (wire format), server (HTTP
shell), fleet (worker processes), webhooks (delivery and delivery faults), faults (seeded choices).
Choices where RunPod's behaviour is unverified: CANCELLED and TIMED_OUT send no webhook by default
(configurable); a job whose worker dies mid-run is requeued once, then FAILED with a reason; a result over
the job's payload limit (10 MB /run, 20 MB /runsync) is refused and the job FAILED naming the limit; registry
credentials are strict (an unknown id on an endpoint, deleting one in use, a duplicate name: 400) and their
logins are never kept (backend's docstring)."""

from goldgate.local.runpod.config import EmulatorConfig, FaultConfig, config_from_mapping, load_config
from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.local.runpod.fleet import Launcher, default_launcher

__all__ = ["EmulatorConfig", "FaultConfig", "Launcher", "RunPodEmulator", "config_from_mapping",
           "default_launcher", "load_config"]
