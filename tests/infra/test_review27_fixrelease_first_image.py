"""A cloud stack whose goldgate:spec.image is still the all-zero digest the stack file ships with: `pulumi preview`
goes through (docs/CLOUD.md: "PROD is the same with `--stack prod`", preview included), saying how the image is set;
`pulumi up` refuses, saying the same. PROD's image comes only from `goldgate promote`: the refusal used to say
"still holds placeholders; replace them", which nudged an operator to paste a digest into PROD by hand, past the
golden gate."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pulumi
import pytest
from infra_harness import SECRETS, RecordingMonitor, filled_stack_file, use_cloud

from goldgate.errors import SpecError
from infra.program import ProgramSettings, read_config, run

ZERO = "registry.example.com/your-org/goldgate-worker@sha256:" + "0" * 64


def _settings(stacks_dir: Path, tmp_path: Path) -> ProgramSettings:
    migrations = tmp_path / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "0001_init.sql").write_text("CREATE TABLE jobs (id TEXT PRIMARY KEY);\n")
    return ProgramSettings(stacks_dir=stacks_dir, migrations_dir=migrations)


def _shipped_image(stack: str) -> dict:
    spec = filled_stack_file(stack)["config"]["goldgate:spec"]
    spec["image"] = ZERO   # everything else filled in, the image as shipped
    return spec


def _preview(stack: str, spec: dict):
    """As use_cloud, but the mocks run a preview (pulumi.runtime.is_dry_run())."""
    cloud = use_cloud(stack, spec)
    pulumi.runtime.set_mocks(cloud, project="goldgate", stack=stack, preview=True, monitor=RecordingMonitor(cloud))
    pulumi.runtime.set_all_config({"goldgate:spec": json.dumps(spec), **SECRETS}, secret_keys=list(SECRETS))
    return cloud


@pytest.mark.parametrize(("stack", "how"), [("prod", "goldgate promote"), ("staging", "goldgate deploy staging")])
def test_a_preview_of_a_stack_before_its_first_image_goes_through_and_says_how_it_gets_one(
        stack, how, stacks_dir, tmp_path, bundle, caplog):
    _preview(stack, _shipped_image(stack))
    assert pulumi.runtime.is_dry_run()
    spec, secrets, _ = read_config(stack)
    with caplog.at_level(logging.WARNING):
        outputs = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)   # declared, not refused
    assert outputs.image == ZERO and outputs.gpu is not None
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "all-zero digest" in warned and how in warned, warned


def test_an_up_of_prod_before_its_first_promotion_says_promote_and_never_by_hand(stacks_dir, tmp_path, bundle):
    use_cloud("prod", _shipped_image("prod"))
    spec, secrets, _ = read_config("prod")
    with pytest.raises(SpecError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    message = str(err.value)
    assert "goldgate promote" in message and "never set it by hand" in message, message
    assert "replace them" not in message, message


def test_an_up_of_staging_before_its_first_image_names_goldgate_deploy(stacks_dir, tmp_path, bundle):
    use_cloud("staging", _shipped_image("staging"))
    spec, secrets, _ = read_config("staging")
    with pytest.raises(SpecError, match=r"goldgate deploy staging --target cloud --image"):
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)


def test_prods_other_placeholders_are_still_refused_without_asking_for_its_image_by_hand(stacks_dir, tmp_path,
                                                                                          bundle):
    spec_doc = _shipped_image("prod")
    spec_doc["cloud"]["cloudflare_account_id"] = "<CLOUDFLARE_ACCOUNT_ID>"
    _preview("prod", spec_doc)   # a preview too: the account is the operator's to fill in
    spec, secrets, _ = read_config("prod")
    with pytest.raises(SpecError) as err:
        run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
    listed = str(err.value).split("\n(")[0]
    assert "cloud.cloudflare_account_id" in listed and "goldgate:spec.image" not in listed, str(err.value)
    assert "goldgate promote" in str(err.value)
