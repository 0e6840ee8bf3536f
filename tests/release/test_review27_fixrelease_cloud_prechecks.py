"""`goldgate release --target cloud` refuses, before it builds anything, what is certain to fail after the build
and the push (tens of GB), STAGING's deploy and its GPU golden run: stack files still holding the shipped
placeholders (secrets never set, `<PLACEHOLDER>`s in goldgate:spec), and golden cases with no reference image in
references/cloud/ (the first cloud release is made by hand: docs/CLOUD.md, "The first release by hand"). With the
Docker engine down, the advice fits the target: a cloud release cannot use `--engine local`.

Before: the shipped stack files and an empty references/cloud/ got past every check and stopped only at the Docker
engine, whose message advised `--engine local`, which the cloud target refuses."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import sys
from pathlib import Path

import pytest
import yaml

from goldgate.cli import main
from goldgate.release import build as builds
from goldgate.release.cases import GOLDEN_DIR

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "fixtures" / "release" / "pulumi_standin.py"
PUSH_TO = "registry.example/acme/goldgate-worker"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout's Pulumi project with the stack files as shipped, driven by the `pulumi` stand-in; no Docker
    engine answers."""
    proj = tmp_path / "project"
    (proj / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", proj / "Pulumi.yaml")
    for stack in ("staging", "prod"):
        shutil.copy(REPO / "stacks" / f"Pulumi.{stack}.yaml", proj / "stacks" / f"Pulumi.{stack}.yaml")
    wrapper = tmp_path / "pulumi" / "bin" / "pulumi"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GOLDGATE_PULUMI_ROOT", str(wrapper.parent.parent))
    monkeypatch.setenv("GOLDGATE_PROJECT_DIR", str(proj))
    monkeypatch.setenv("PULUMI_STANDIN_STATE_DIR", str(tmp_path / "pulumi-state"))
    monkeypatch.setenv("PULUMI_STANDIN_LOG", str(tmp_path / "pulumi-commands.jsonl"))
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    monkeypatch.setattr(builds, "git_commit", lambda *_a: "1" * 40)   # any checkout, git or not
    return proj


def fill(project: Path) -> None:
    """The stack files as an operator leaves them after "Configure a stack", steps 2 and 3 (the image as shipped)."""
    for stack in ("staging", "prod"):
        path = project / "stacks" / f"Pulumi.{stack}.yaml"
        doc = yaml.safe_load(path.read_text())
        config = doc["config"]
        for n, key in enumerate(("runpodApiKey", "webhookSecret", "apiToken", "cloudflareApiToken")):  # step 3's
            config[f"goldgate:{key}"] = {"secure": ciphertext(f"{stack}/{n}")}
        spec = config["goldgate:spec"]
        spec["cloud"]["cloudflare_account_id"] = "0123456789abcdef0123456789abcdef"
        spec["api"]["public_base_url"] = spec["api"]["public_base_url"].replace("<WORKERS_SUBDOMAIN>", "acme")
        path.write_text(yaml.safe_dump(doc, sort_keys=False))


def ciphertext(seed: str) -> str:
    """A `secure:` value shaped as the passphrase provider writes it: `v1:<12-byte nonce>:<ciphertext and its 16-byte
    GCM tag>`, each base64 (a fresh nonce per value, as the CLI draws one)."""
    nonce, sealed = hashlib.sha256(seed.encode()).digest()[:12], hashlib.sha512(seed.encode()).digest()[:48]
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


def references(tmp_path: Path, leave_out: int = 0) -> Path:
    """A references directory holding the local target's images for every case but the first `leave_out`."""
    out = tmp_path / "cloud-references"
    out.mkdir()
    for png in sorted((GOLDEN_DIR / "references" / "local").glob("*.png"))[leave_out:]:
        shutil.copy(png, out / png.name)
    return out


def release(capsys: pytest.CaptureFixture, tmp_path: Path, *extra: str) -> tuple[int, str]:
    code = main(["release", "--target", "cloud", "--repo", PUSH_TO, "--home", str(tmp_path / "home"),
                 "--reports-dir", str(tmp_path / "reports"), *extra])
    return code, capsys.readouterr().err


def test_the_shipped_stack_files_are_refused_before_anything_is_built(project: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and "Docker engine" not in err, err   # before: the first thing it stopped at
    for named in ("stacks/Pulumi.staging.yaml", "stacks/Pulumi.prod.yaml", "goldgate:runpodApiKey",
                  "goldgate:cloudflareApiToken", "pulumi config set --secret", "cloud.cloudflare_account_id",
                  "api.public_base_url", "nothing was built"):
        assert named in err, (named, err)
    assert "goldgate:spec.image" not in err   # the shipped all-zero pin is the release's to set
    assert not (tmp_path / "pulumi-commands.jsonl").exists(), "pulumi ran before the refusal"


def test_one_secret_left_unset_on_prod_alone_is_named(project: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    fill(project)
    path = project / "stacks" / "Pulumi.prod.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:apiToken"] = {"secure": "<SET_WITH: pulumi config set --secret goldgate:apiToken>"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and "goldgate:apiToken" in err and "--stack prod" in err, err
    assert "Pulumi.staging.yaml" not in err and "Docker engine" not in err, err


def test_no_cloud_reference_at_all_is_refused_naming_the_first_release_by_hand(project: Path, tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    fill(project)
    empty = tmp_path / "empty-references"
    empty.mkdir()
    code, err = release(capsys, tmp_path, "--references-dir", str(empty))
    assert code == 1 and "Docker engine" not in err, err
    for named in ("holds no reference image for any of the", "The first release by hand", "--update-references",
                  "goldgate deploy staging --target cloud", "Nothing was built"):
        assert named in err, (named, err)


def test_a_case_without_its_cloud_reference_is_named(project: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    fill(project)
    refs = references(tmp_path, leave_out=1)
    absent = min((GOLDEN_DIR / "references" / "local").glob("*.png")).stem
    code, err = release(capsys, tmp_path, "--references-dir", str(refs))
    assert code == 1 and f"({absent})" in err and f"--case {absent}" in err and "Docker engine" not in err, err


def test_with_every_check_passed_a_down_engine_gets_advice_a_cloud_release_can_take(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fill(project)
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    line = next(ln for ln in err.splitlines() if ln.startswith("goldgate: error: "))
    assert code == 1 and "cannot reach a Docker engine" in line, err
    assert "--engine local" not in line and "DOCKER_HOST" in line and PUSH_TO in line, line


@pytest.mark.parametrize(("target", "said", "not_said"), [
    ("cloud", "the cloud target needs the image pushed", "--engine local"),
    ("local", "drop --repo", "--engine local")])   # `--engine local --repo` is refused too
def test_a_build_with_the_engine_down_gets_advice_for_its_target(project: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture, target: str,
                                                                 said: str, not_said: str) -> None:
    code = main(["build", "--target", target, "--repo", PUSH_TO, "--home", str(tmp_path / "home")])
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("goldgate: error: "))
    assert code == 1 and "cannot reach a Docker engine" in line and said in line and not_said not in line, line
