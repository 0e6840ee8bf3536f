"""Stack files and worker images for local-target tests: the shipped stacks with test overrides, and an image
built from a changed copy of the worker tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from goldgate import spec as specs
from goldgate.commands.local import WORKER_SOURCE
from goldgate.local import image_store


def stacks_file(tmp: Path, endpoint: dict | None = None, **overrides: dict) -> Path:
    """The shipped local stacks, with per-stack `local:` overrides (faults, retry delay...)."""
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    for stack, local in overrides.items():
        doc["stacks"][stack].setdefault("local", {}).update(local)
        doc["stacks"][stack]["endpoint"].update(endpoint or {})
    path = tmp / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def worker_variant(home: Path, tmp: Path, change: str = "a change to the worker tree makes a new image") -> str:
    """A new image in `home`'s store: the worker tree copied under `tmp` with `change` as a comment at the end of its
    __init__.py (a change to a file docker is sent makes a new image; a notes file or a README edit does not); its
    reference."""
    source = tmp / "worker"
    shutil.copytree(WORKER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with (source / "__init__.py").open("a", encoding="utf-8") as code:
        code.write(f"\n# {change}\n")
    return image_store.build_local_image(source, home)
