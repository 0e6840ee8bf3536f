"""A local worker imports the runpod SDK without py-cpuinfo's probe of the CPU (goldgate/local/worker_process.py):
the probe starts a Python process, and lscpu, dmesg and a CPUID probe under it, for every worker of a fleet that
shares one host. The SDK gets the name the probe reports first on Linux, /proc/cpuinfo's `model name`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ci_policy import needs

from goldgate.local.worker_process import _cpu_model_name

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter: the SDK is imported once per process. Every process started during the import is
# recorded (py-cpuinfo's probe starts one with subprocess.Popen, and its CPUID probe one with multiprocessing).
_IMPORT = """
import json, multiprocessing, subprocess
started = []
real_popen, real_start = subprocess.Popen.__init__, multiprocessing.Process.start
def popen(self, args, *a, **k):
    started.append(str(args))
    return real_popen(self, args, *a, **k)
def start(self):
    started.append("multiprocessing.Process")
    return real_start(self)
subprocess.Popen.__init__ = popen
multiprocessing.Process.start = start
import cpuinfo
probe = cpuinfo.get_cpu_info
from goldgate.local.worker_process import import_runpod_sdk
import_runpod_sdk()
import runpod.serverless.utils.rp_debugger as debugger
import runpod.serverless
print(json.dumps({"started": started, "processor": debugger.PROCESSOR, "restored": cpuinfo.get_cpu_info is probe,
                  "start": callable(runpod.serverless.start)}))
"""


@needs(_cpu_model_name() is not None, "a Linux /proc/cpuinfo that names the CPU (`model name`)")
def test_the_sdk_imports_without_starting_a_process_and_names_the_cpu_as_the_probe_would():
    done = subprocess.run([sys.executable, "-c", _IMPORT], check=False, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # The SDK's own small probes of the platform (`uname -p`, `file -b <python>`) still run; py-cpuinfo's do not.
    probes = [c for c in seen["started"] if "cpuinfo" in c or "multiprocessing" in c or "python" in c.split(",")[0]]
    assert probes == [], seen["started"]
    assert seen["processor"] == _cpu_model_name()
    assert seen["restored"] is True   # only the SDK's import was handed the name: py-cpuinfo answers as before after
    assert seen["start"] is True


def test_the_cpu_name_is_the_first_model_name_line(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n\n"
                   "processor\t: 1\nmodel name\t: another\n")
    assert _cpu_model_name(str(x86)) == "AMD EPYC 7B13 64-Core Processor"


def test_without_a_model_name_the_sdk_is_left_to_probe(tmp_path):
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nmodel name\t:   \n")
    assert _cpu_model_name(str(arm)) is None
    assert _cpu_model_name(str(tmp_path / "missing")) is None
