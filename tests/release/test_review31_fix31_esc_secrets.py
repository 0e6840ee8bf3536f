"""A stack file that imports Pulumi ESC environments (`environment:`) may get its secrets from them, through their
`pulumiConfig`, which only the Pulumi CLI resolves. `goldgate release --target cloud`'s precheck refused such a
secret as "not set" because the stack file lacks it; it now asks the CLI (`pulumi config get`, the value never
shown) and refuses only a secret the CLI says is not set, naming the environments imported. Against the `pulumi`
stand-in, which reads ESC environments from $PULUMI_STANDIN_ESC_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.release.pulumi_standin import encrypt
from test_review27_fixrelease_cloud_prechecks import fill, project, references, release  # noqa: F401 -- a fixture

TOKEN = "esc-api-token-5d4c3b2a19087f6e"


def _imports(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
             supplies: dict[str, str]) -> None:
    """STAGING's stack file without its goldgate:apiToken, importing goldgate/common then goldgate/staging, whose
    `pulumiConfig` holds `supplies` (each as a secret, stored as ciphertext as ESC stores it)."""
    esc = tmp_path / "esc"
    (esc / "goldgate").mkdir(parents=True)
    (esc / "goldgate" / "common.yaml").write_text(yaml.safe_dump({"values": {"pulumiConfig": {"region": "weur"}}}))
    (esc / "goldgate" / "staging.yaml").write_text(yaml.safe_dump({
        "imports": ["goldgate/common"],
        "values": {"pulumiConfig": {key: {"fn::secret": {"ciphertext": encrypt(value)}}
                                    for key, value in supplies.items()}}}))
    monkeypatch.setenv("PULUMI_STANDIN_ESC_DIR", str(esc))
    path = project / "stacks" / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    del doc["config"]["goldgate:apiToken"]
    doc["environment"] = ["goldgate/common", "goldgate/staging"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_secret_an_imported_environment_supplies_is_not_refused(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
        capsys: pytest.CaptureFixture) -> None:
    fill(project)
    _imports(project, tmp_path, monkeypatch, {"apiToken": TOKEN})   # without a namespace: the project's, goldgate
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    # Past every precheck: it stops only at the build, for want of a Docker engine.
    line = next(ln for ln in err.splitlines() if ln.startswith("goldgate: error: "))
    assert code == 1 and "cannot reach a Docker engine" in line, err
    assert "not set" not in err and TOKEN not in err, err


def test_a_secret_neither_the_file_nor_its_environments_set_is_refused_naming_them(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
        capsys: pytest.CaptureFixture) -> None:
    fill(project)
    _imports(project, tmp_path, monkeypatch, {"goldgate:webhookSecretPrevious": TOKEN})
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    said = next(ln for ln in err.splitlines() if "Pulumi.staging.yaml: secret" in ln)
    assert code == 1 and "Docker engine" not in err, err
    assert "goldgate:apiToken" in said and "goldgate/common, goldgate/staging" in said, said
    assert "pulumiConfig" in said and "pulumi config set --secret goldgate:apiToken --stack staging" in err, err
    assert "Pulumi.prod.yaml" not in err and TOKEN not in err, err
