"""Review 30 mutation audit (mut30): `goldgate release --target cloud`'s precheck of the stack files counts a secret
held empty as not set: `secure: ""` and a plain empty value are what a `pulumi config set` of an empty variable or a
hand edit leave, and `pulumi up` refuses them (infra/program.py: "not set (or empty)"), after the build and the
push. Each is named in full (`goldgate:<key>`) on its file's line, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_review27_fixrelease_cloud_prechecks import fill, project, references, release  # noqa: F401 -- fixture


@pytest.mark.parametrize("empty", [{"secure": ""}, {"secure": "  "}, ""])
def test_a_secret_held_empty_is_refused_before_the_build(project: Path, tmp_path: Path,  # noqa: F811
                                                         capsys: pytest.CaptureFixture, empty: object) -> None:
    fill(project)
    path = project / "stacks" / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:apiToken"] = empty
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and "Pulumi.prod.yaml: secret not set: goldgate:apiToken;" in err, err
    assert "Docker engine" not in err and not (tmp_path / "pulumi-commands.jsonl").exists(), err
