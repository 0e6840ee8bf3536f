"""A golden case file with the usual slips (an `expect` key that lost its indent, a parameter outside `inputs:`, a
misspelt `expect` key) is refused with what the file may hold, so the operator can fix it without reading the
source."""

from __future__ import annotations

from pathlib import Path

import pytest

from goldgate.release.cases import CaseError, load_case


@pytest.mark.parametrize(("text", "says"), [
    ("workflow: sdxl-txt2img\ninputs: {prompt: x}\nexpect:\nimages: 1\n",
     ("unknown field(s) images; a case takes description, expect, id, inputs, smoke, workflow (images belongs under "
     "`expect:`: indent it)")),
    ("workflow: sdxl-txt2img\ninputs: {prompt: x}\nexpect:\nwidth: 768\nheight: 768\n",
     ("unknown field(s) height, width; a case takes description, expect, id, inputs, smoke, workflow (height, width "
     "belong under `expect:`: indent them)")),
    ("workflow: sdxl-txt2img\ninputs:\nprompt: x\n",
     ("unknown field(s) prompt; a case takes description, expect, id, inputs, smoke, workflow (a workflow parameter "
     "goes under `inputs:`)")),
    ("workflow: sdxl-txt2img\nexpect: {max_hash_distnace: 6}\n",
     ("expect: unknown field(s) max_hash_distnace; expect takes content_type, height, images, max_bytes, "
     "max_color_distance, max_hash_distance, max_latency_s, min_bytes, reference, status, width")),
])
def test_a_case_file_typo_is_refused_saying_what_the_file_may_hold(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "sdxl-lighthouse.yaml"
    path.write_text(text)
    with pytest.raises(CaseError) as err:
        load_case(path)
    assert str(err.value) == f"{path}: {says}"
