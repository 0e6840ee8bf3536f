"""Stack files for local-target tests: the shipped stacks with test overrides."""

from __future__ import annotations

from pathlib import Path

import yaml

from goldgate import spec as specs


def stacks_file(tmp: Path, endpoint: dict | None = None, **overrides: dict) -> Path:
    """The shipped local stacks, with per-stack `local:` overrides (faults, retry delay...)."""
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    for stack, local in overrides.items():
        doc["stacks"][stack].setdefault("local", {}).update(local)
        doc["stacks"][stack]["endpoint"].update(endpoint or {})
    path = tmp / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path
