"""The API Worker's upload, globbed from the real service/ package and workflows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.worker_bundle import MAIN_MODULE, WORKFLOWS_MODULE, BundleError, collect
from service.workflows import Registry

ROOT = Path(__file__).resolve().parents[2]


def _module(bundle, name: str) -> str:
    return next(f.content.decode() for f in bundle.files if f.name == name)


def test_the_real_service_bundles_with_its_entry_workflows_and_no_local_only_modules():
    bundle = collect()
    names = bundle.names()
    assert bundle.main_module == MAIN_MODULE and "from service.cloudflare_entry import Default" in bundle.main_content
    assert {"service/__init__.py", "service/app.py", "service/cloudflare_entry.py", WORKFLOWS_MODULE} <= set(names)
    assert "service/local_server.py" not in names and not any("__pycache__" in n for n in names)
    shipped = sorted(p.name for p in (ROOT / "images/worker/workflows").glob("*.json"))
    assert shipped and [n for n in names if n.startswith("workflows/")] == [f"workflows/{n}" for n in shipped]
    for f in bundle.files:
        if f.content_type == "text/x-python":
            compile(f.content, f.name, "exec")  # every module the Worker imports is valid Python
    compile(bundle.main_content, MAIN_MODULE, "exec")
    scope: dict = {}
    exec(_module(bundle, WORKFLOWS_MODULE), scope)  # noqa: S102 - our own generated module
    assert sorted(scope["WORKFLOWS"]) == shipped
    assert {w.id for w in Registry.from_texts(scope["WORKFLOWS"]).all()}  # the service can read what ships


def _tree(tmp_path: Path, entry: bool = True, workflow: str = '{"id": "a"}') -> tuple[Path, Path]:
    service, workflows = tmp_path / "service", tmp_path / "workflows"
    service.mkdir()
    workflows.mkdir()
    (service / "__init__.py").write_text("")
    if entry:
        (service / "cloudflare_entry.py").write_text("class Default:\n    pass\n")
    (workflows / "a.json").write_text(workflow)
    return service, workflows


def test_a_missing_entry_module_is_refused_clearly(tmp_path):
    with pytest.raises(BundleError, match="cloudflare_entry.py is missing"):
        collect(*_tree(tmp_path, entry=False))


def test_a_broken_workflow_file_is_refused_clearly(tmp_path):
    with pytest.raises(BundleError, match="a.json is not valid JSON"):
        collect(*_tree(tmp_path, workflow="{not json"))


def test_the_bundle_digest_follows_every_file(tmp_path):
    service, workflows = _tree(tmp_path)
    before = collect(service, workflows).digest
    assert collect(service, workflows).digest == before
    (workflows / "a.json").write_text(json.dumps({"id": "a", "version": "a@2"}))
    assert collect(service, workflows).digest != before


def test_the_bundle_imports_with_the_stdlib_alone(tmp_path):
    """What ships must run in Pyodide: no site-packages, only the bundle and the Workers runtime's own
    `workers`/`pyodide` modules (stand-ins here)."""
    import subprocess
    import sys

    bundle = collect()
    for f in bundle.files:
        target = tmp_path / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
    (tmp_path / MAIN_MODULE).write_text(bundle.main_content)
    (tmp_path / "workers.py").write_text("class WorkerEntrypoint:\n    pass\n\nclass Response:\n    pass\n")
    (tmp_path / "pyodide").mkdir()
    (tmp_path / "pyodide" / "__init__.py").write_text("")
    (tmp_path / "pyodide" / "ffi.py").write_text("jsnull = None\n\ndef to_js(x, **kw):\n    return x\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import worker_main; "
            "assert worker_main.Default.__name__ == 'Default'; "
            "assert not [m for m in ('httpx', 'boto3', 'uvicorn', 'yaml', 'goldgate', 'images') if m in sys.modules]")
    done = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)], check=False, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
