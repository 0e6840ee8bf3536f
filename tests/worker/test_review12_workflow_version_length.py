"""`goldgate build` refuses a workflow whose version the API service would refuse (over 64 characters, the
service's and the log schema's limit), instead of building an image whose every deploy fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from goldgate.local.image_store import ImageStoreError, build_local_image

REPO = Path(__file__).resolve().parents[2]


def test_a_workflow_version_the_service_refuses_fails_the_build_not_the_deploy(tmp_path):
    source = tmp_path / "worker"
    shutil.copytree(REPO / "images/worker", source, ignore=shutil.ignore_patterns("__pycache__"))
    workflow = json.loads((source / "workflows/sdxl-txt2img.json").read_text())
    wid = "sdxl-txt2img-for-the-marketing-team-with-a-long-descriptive-n"  # 61 characters: a valid id
    workflow.update(id=wid, version=f"{wid}@1.0.0")  # 67 characters
    (source / f"workflows/{wid}.json").write_text(json.dumps(workflow))

    with pytest.raises(ImageStoreError, match="over 64 characters"):
        build_local_image(source, tmp_path / "home")
