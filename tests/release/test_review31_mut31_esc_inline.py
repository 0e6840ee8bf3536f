"""A stack file's `environment:` (an inline definition importing nothing, or a list of imports) at `goldgate release
--target cloud`'s precheck: a secret the environment supplies is not refused; one the CLI cannot say about (an
environment it cannot open) is named as not checked and let through; one the file holds as a placeholder stays
refused, whatever is imported. Found by a mutation audit: each could be dropped with every earlier test passing.
Against the `pulumi` stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.release.pulumi_standin import encrypt
from test_review27_fixrelease_cloud_prechecks import fill, project, references, release  # noqa: F401 -- a fixture

TOKEN = "inline-api-token-7e6d5c4b3a291808"
SUPPLIES = {"values": {"pulumiConfig": {"apiToken": {"fn::secret": {"ciphertext": encrypt(TOKEN)}}}}}


def _staging(proj: Path, environment: object, api_token: object = None) -> None:
    path = proj / "stacks" / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    if api_token is None:
        del doc["config"]["goldgate:apiToken"]
    else:
        doc["config"]["goldgate:apiToken"] = api_token
    doc["environment"] = environment
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _esc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    esc = tmp_path / "esc" / "goldgate"
    esc.mkdir(parents=True)
    (esc / "staging.yaml").write_text(yaml.safe_dump(SUPPLIES))
    monkeypatch.setenv("PULUMI_STANDIN_ESC_DIR", str(esc.parent))


def _past_the_prechecks(err: str) -> bool:
    """Past every precheck: it stops only at the build, for want of a Docker engine."""
    line = next((ln for ln in err.splitlines() if ln.startswith("goldgate: error: ")), "")
    return "cannot reach a Docker engine" in line


def test_a_secret_an_inline_environment_supplies_is_not_refused(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture) -> None:
    fill(project)
    _esc(tmp_path, monkeypatch)
    _staging(project, SUPPLIES)
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and _past_the_prechecks(err), err
    # Asked of the CLI, which resolved it: no "not checked" either.
    assert "not set" not in err and "not checked" not in err and TOKEN not in err, err


def test_a_secret_of_an_environment_the_cli_cannot_open_is_named_not_checked_and_let_through(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
        capsys: pytest.CaptureFixture) -> None:
    fill(project)
    _esc(tmp_path, monkeypatch)
    _staging(project, ["goldgate/missing"])
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and _past_the_prechecks(err), err
    assert ("goldgate:apiToken not checked: `pulumi config get goldgate:apiToken --stack staging` failed" in err), err


def test_a_placeholder_in_the_file_is_refused_even_when_an_environment_is_imported(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
        capsys: pytest.CaptureFixture) -> None:
    fill(project)
    _esc(tmp_path, monkeypatch)
    _staging(project, ["goldgate/staging"], api_token={"secure": "<API_TOKEN>"})
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    said = next(ln for ln in err.splitlines() if "Pulumi.staging.yaml: secret" in ln)
    assert code == 1 and not _past_the_prechecks(err), err
    assert "goldgate:apiToken" in said and "nor by the Pulumi ESC environment it imports (goldgate/staging)" in said
    assert "(or in the `pulumiConfig` of that environment)" in said, said


def test_a_secret_an_environment_named_alone_supplies_is_not_refused(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 -- the fixture
        capsys: pytest.CaptureFixture) -> None:
    # `environment: goldgate/staging`: one import written as a string, not a list.
    fill(project)
    _esc(tmp_path, monkeypatch)
    _staging(project, "goldgate/staging")
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and _past_the_prechecks(err), err
    assert "not set" not in err and "not checked" not in err and TOKEN not in err, err
