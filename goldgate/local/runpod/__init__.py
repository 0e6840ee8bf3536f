"""The local RunPod emulator (moto-style): REST v2 control plane, serverless data plane, the worker URLs
the real `runpod` SDK loop calls, webhooks, and fault injection. See `emulator.RunPodEmulator`."""

from goldgate.local.runpod.config import EmulatorConfig, FaultConfig, config_from_mapping, load_config
from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.local.runpod.fleet import Launcher, default_launcher

__all__ = ["EmulatorConfig", "FaultConfig", "Launcher", "RunPodEmulator", "config_from_mapping",
           "default_launcher", "load_config"]
