"""Review 30 (fix30): `goldgate release --target cloud` refuses, before it builds anything, a stack file whose
`secure:` value is no ciphertext of a Pulumi secrets provider: a real key pasted in by hand (`secure: "rpa_..."`)
sits in plain text in a file that is committed, and the Pulumi CLI fails to decrypt it only at PROD's promotion,
after the build, the push and STAGING's golden run. The refusal names the key, never its value, and says to rotate
it. Before, only a `<...>` placeholder was refused.

What passes: the passphrase (and KMS) providers' `v1:<12-byte nonce>:<ciphertext>`, both base64, and on a stack
file naming no such provider (no `encryptionsalt:`, no `encryptedkey:`: Pulumi Cloud's), base64 alone."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from test_review27_fixrelease_cloud_prechecks import fill, project, references, release  # noqa: F401 - project: the fixture

RUNPOD_KEY = "rpa_" + "K3Y9" * 10   # a key's shape, pasted as it came
HEX_SECRET = "9f" * 32               # `openssl rand -hex 32`
TOKEN_B64 = base64.b64encode(bytes(range(7, 39))).decode()   # base64 text, not the CLI's `v1:` shape
SERVICE_CIPHERTEXT = "AAABAKFp4mnWwdZU4/j+wtcsGUeoIBUQQkzD+O/mYEYtcvNnh/YN1lNjxg=="  # Pulumi Cloud's, as it writes


def _set(checkout: Path, stack: str, **secure: str) -> None:
    path = checkout / "stacks" / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    if secure.pop("encryptionsalt", None):
        doc["encryptionsalt"] = "v1:c2FsdHNhbHQ=:v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    for key, value in secure.items():
        doc["config"][f"goldgate:{key}"] = {"secure": value}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_secret_pasted_in_plain_text_as_a_secure_value_is_refused_by_its_key_never_shown(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    fill(project)
    _set(project, "prod", runpodApiKey=RUNPOD_KEY)
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and "Docker engine" not in err, err   # before: past every check, stopped at the engine
    assert RUNPOD_KEY not in err and "K3Y9" not in err, "the refusal shows the secret"
    for said in ("Pulumi.prod.yaml", "goldgate:runpodApiKey", "no ciphertext", "plain text", "rotate it",
                 "pulumi config set --secret goldgate:runpodApiKey --stack prod", "nothing was built"):
        assert said in err, (said, err)
    assert "Pulumi.staging.yaml" not in err, err
    assert not (tmp_path / "pulumi-commands.jsonl").exists(), "pulumi ran before the refusal"


def test_each_stack_file_is_judged_by_the_ciphertext_its_secrets_provider_writes(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811
    fill(project)
    # A passphrase stack: only `v1:` values are its provider's.
    _set(project, "staging", encryptionsalt="yes", apiToken=TOKEN_B64)
    # A Pulumi Cloud stack: the service's base64 passes, a hex token does not.
    _set(project, "prod", webhookSecret=HEX_SECRET, cloudflareApiToken=SERVICE_CIPHERTEXT)
    code, err = release(capsys, tmp_path, "--references-dir", str(references(tmp_path)))
    assert code == 1 and "Docker engine" not in err, err
    said = {stack: [line for line in err.splitlines() if f"Pulumi.{stack}.yaml: `secure:`" in line]
            for stack in ("staging", "prod")}
    assert [len(lines) for lines in said.values()] == [1, 1], err
    [staging], [prod] = said.values()
    assert "goldgate:apiToken" in staging and "goldgate:webhookSecret" in prod, err
    for command in ("pulumi config set --secret goldgate:apiToken --stack staging",
                    "pulumi config set --secret goldgate:webhookSecret --stack prod"):
        assert any(line.startswith("…   ") and command in line for line in err.splitlines()), (command, err)
    assert "cloudflareApiToken" not in prod and "runpodApiKey" not in err, err
    assert TOKEN_B64 not in err and HEX_SECRET not in err, "the refusal shows a secret"
