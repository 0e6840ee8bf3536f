"""`goldgate build` on the local target warns of a custom node whose requirements are not locked, as the docker build
does in its log: the entry's author learns it at the first local build, not when `goldgate checklist prod --target
cloud` fails on it (custom_nodes_locked) or from a docker build log. One line on stderr per such entry, naming it and
the command that locks it; an entry that says `requirements:` (a lock, or `none`) is not named. Run as the CLI."""

from __future__ import annotations

import yaml
from test_review19_lead_build_warns import build, worker_copy
from test_review31_wfj31_node_type_typo import PIN

URL = "https://example.invalid/team/tiny-upscaler.git"


def _declare(context, **requirements) -> None:
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": [], "custom_nodes": [
        {"name": "tiny-upscaler", "url": URL, "commit": PIN, "nodes": ["TinyUpscale"], **requirements}]}))


def test_the_local_build_names_a_custom_node_until_its_requirements_are_locked(tmp_path):
    context = worker_copy(tmp_path)
    _declare(context)
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr            # a warning, as on the docker build, not a refusal
    warned = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warned) == 1, done.stderr
    assert "tiny-upscaler installs its own requirements.txt without pins or hashes" in warned[0]
    assert (f"`pip-compile --generate-hashes --output-file images/worker/custom_nodes/tiny-upscaler.txt "
            f"requirements.txt` in a clone of {URL} at {PIN}") in warned[0]

    _declare(context, requirements="none")               # it says it has none: nothing to lock, nothing to say
    done = build(context, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "warning:" not in done.stderr and "tiny-upscaler" not in done.stderr, done.stderr
