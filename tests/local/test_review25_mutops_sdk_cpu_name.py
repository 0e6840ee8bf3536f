"""import_runpod_sdk hands the SDK /proc/cpuinfo's CPU name while it imports, and only when there is one: on a
CPU that names none there (most ARM) the SDK's own probe answers, as it always did. A stand-in SDK records what
py-cpuinfo (a stand-in too) answers it at its import."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from goldgate.local import worker_process


@pytest.mark.parametrize(("model_name", "seen"), [("AMD EPYC 7B13", "AMD EPYC 7B13"), (None, "probed")])
def test_the_sdk_is_handed_the_cpu_name_only_when_cpuinfo_names_one(tmp_path: Path, monkeypatch, model_name,
                                                                    seen) -> None:
    cpuinfo = types.ModuleType("cpuinfo")
    cpuinfo.get_cpu_info = lambda: {"brand_raw": "probed"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cpuinfo", cpuinfo)
    sdk = tmp_path / "sdk" / "runpod"
    sdk.mkdir(parents=True)
    (sdk / "__init__.py").write_text("import cpuinfo\nBRAND = cpuinfo.get_cpu_info()['brand_raw']\n")
    monkeypatch.syspath_prepend(str(sdk.parent))
    # recorded first, so the stand-in SDK leaves sys.modules after the test whether or not runpod was imported
    monkeypatch.setitem(sys.modules, "runpod", types.ModuleType("runpod"))
    monkeypatch.delitem(sys.modules, "runpod")
    monkeypatch.setattr(worker_process, "_CLI_ONLY_MODULES", ())
    monkeypatch.setattr(worker_process, "_cpu_model_name", lambda: model_name)
    worker_process.import_runpod_sdk()
    assert sys.modules["runpod"].BRAND == seen
    assert cpuinfo.get_cpu_info() == {"brand_raw": "probed"}  # the probe is the SDK's own again after
