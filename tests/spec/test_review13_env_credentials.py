"""endpoint.env is committed in plain text (goldgate:spec) and shown in RunPod's console: a variable named as a
credential is refused by its name, never quoting its value; names that only contain such a word are not."""

from __future__ import annotations

import pytest
import yaml

from goldgate import spec as specs
from goldgate.errors import SpecError


def _load(tmp_path, env: dict):
    doc = yaml.safe_load(specs.LOCAL_STACKS_FILE.read_text())
    doc["stacks"]["staging"]["endpoint"]["env"] = env
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(doc))
    return specs.load_local("staging", path)


@pytest.mark.parametrize("name", ["HF_TOKEN", "OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD",
                                  "GOOGLE_APPLICATION_CREDENTIALS", "CIVITAI_APIKEY"])
def test_a_credential_in_endpoint_env_is_refused_by_name(tmp_path, name):
    value = "hf_SecretTokenValue123456"
    with pytest.raises(SpecError) as err:
        _load(tmp_path, {name: value})
    assert name in str(err.value) and "looks like a credential" in str(err.value)
    assert value not in str(err.value)


def test_names_that_only_contain_such_a_word_are_taken(tmp_path):
    spec = _load(tmp_path, {"TOKENIZERS_PARALLELISM": "false", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"})
    assert spec.endpoint.env["TOKENIZERS_PARALLELISM"] == "false"
