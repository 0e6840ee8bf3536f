"""Review 29 (mut): `golden --update-references` replaces a reference whose distance from the new render is AT the
case's limits (they are maxima, as the comparison of a run without the option reads them): a case whose limits are 0
(every render must be the reference) replaces an identical reference without `--accept-changed`."""

from __future__ import annotations

from pathlib import Path

import pytest
from release_support import write_case
from test_review28_mut2_reference_update import _update, target  # noqa: F401 -- the fixture

from goldgate.release.verification import GoldenPaths


def test_a_render_at_exactly_the_cases_limits_replaces_its_reference(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                                     paths: GoldenPaths, target) -> None:  # noqa: F811
    write_case(paths.cases_dir, "square", "workflow: wf-a\nsmoke: true\ninputs: {prompt: p1, seed: 1, width: 64, "
                                          "height: 64}\nexpect: {images: 1, width: 64, height: 64, "
                                          "max_hash_distance: 0, max_color_distance: 0}\n")
    code, out, err = _update(capsys, tmp_path, paths, "--case", "square")
    assert code == 0, (out, err)
    assert "wrote square.png (the one it replaces is dHash distance 0 (max 0), mean colour difference 0 (max 0) " \
           "from this render: within the case's limits)" in err, err
    assert "left as it was" not in out + err, (out, err)
    assert "1 reference was written by this run" in out, out
