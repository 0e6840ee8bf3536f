"""The `pulumi` stand-in stores a secret as the CLI's passphrase provider does, `secure: v1:<nonce>:<ciphertext>`,
never the secret in plain text (it wrote `standin:<value>`, so every test's stack file showed it), and reads back
only what it wrote: a `secure:` value it cannot decrypt fails as the CLI fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from goldgate.commands.release import _ciphertext

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "fixtures" / "release" / "pulumi_standin.py"
SECRET = "rpa_0123456789abcdef0123456789abcdef"


def _pulumi(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(STANDIN), *args], cwd=project, capture_output=True, text=True,
                          check=False, timeout=60, env={"PATH": "/usr/bin:/bin", "PULUMI_STANDIN_STATE_DIR":
                                                        str(project / "state")})


def _project(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "stacks" / "Pulumi.staging.yaml", tmp_path / "stacks" / "Pulumi.staging.yaml")
    return tmp_path


def test_a_secret_set_through_the_standin_is_ciphertext_and_reads_back(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _pulumi(project, "config", "set", "goldgate:runpodApiKey", "--secret", "--stack", "staging",
                   "--non-interactive", "--", SECRET)
    assert done.returncode == 0, done.stderr
    text = (project / "stacks" / "Pulumi.staging.yaml").read_text()
    assert SECRET not in text and SECRET[4:20] not in text
    secure = yaml.safe_load(text)["config"]["goldgate:runpodApiKey"]["secure"]
    assert _ciphertext(secure, data_key=True), secure   # as the release precheck judges a passphrase stack's value
    got = _pulumi(project, "config", "get", "goldgate:runpodApiKey", "--json", "--stack", "staging")
    assert got.returncode == 0 and json.loads(got.stdout) == {"value": SECRET, "secret": True}, got.stderr
    # Set again: a fresh nonce, as the CLI draws one, so the same secret is no same text.
    _pulumi(project, "config", "set", "goldgate:apiToken", "--secret", "--stack", "staging", "--", SECRET)
    doc = yaml.safe_load((project / "stacks" / "Pulumi.staging.yaml").read_text())
    assert doc["config"]["goldgate:apiToken"]["secure"] != secure


def test_a_secure_value_the_standin_did_not_write_fails_to_decrypt(tmp_path: Path) -> None:
    project = _project(tmp_path)
    path = project / "stacks" / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:apiToken"] = {"secure": "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
    doc["config"]["goldgate:webhookSecret"] = {"secure": f"standin:{SECRET}"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    for key in ("goldgate:apiToken", "goldgate:webhookSecret"):
        got = _pulumi(project, "config", "get", key, "--json", "--stack", "staging")
        assert got.returncode != 0 and "failed to decrypt config" in got.stderr, (key, got.stdout)
        assert SECRET not in got.stdout + got.stderr
