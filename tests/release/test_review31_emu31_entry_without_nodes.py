"""A custom_nodes.yaml entry that lists no `nodes` tells `goldgate build` nothing about the types it provides, so a
workflow using one of them is refused as a type nobody provides. The refusal names that entry and what to add, since
the entry is likelier the one that has the type than a missing one. Run as the CLI, against a scratch home."""

from __future__ import annotations

import yaml
from test_review19_lead_build_warns import build, worker_copy
from test_review31_wfj31_node_type_typo import PIN, _upscale_node_typed


def test_a_refused_node_type_names_the_entry_that_lists_no_nodes(tmp_path):
    context = worker_copy(tmp_path)
    (context / "custom_nodes.yaml").write_text(yaml.safe_dump({"schema": 1, "core_nodes": [], "custom_nodes": [
        {"name": "tiny-upscaler", "url": "https://example.invalid/team/tiny-upscaler.git", "commit": PIN}]}))
    _upscale_node_typed(context, "TinyUpscale")
    done = build(context, tmp_path / "home")
    assert done.returncode != 0
    assert "node 10 has type 'TinyUpscale'" in done.stderr
    assert "entry tiny-upscaler lists no `nodes`: list the types it provides" in done.stderr
