"""`goldgate metrics --target cloud` judges the error rate by the cloud stack file's thresholds.error_rate (review 27),
as the local stack's text does by stacks/local.yaml's."""

from __future__ import annotations

import json

import yaml
from test_review14_w1_cloudflare_api_base import TOKEN, _stack_file, d1, no_way_out  # noqa: F401 (fixtures)

from goldgate.cli import main


def test_cloud_metrics_carry_the_stack_files_error_rate_threshold(d1, tmp_path, monkeypatch, capsys):  # noqa: F811
    standin, database = d1
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, standin.api_base)
    path = stacks / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["goldgate:spec"].setdefault("thresholds", {})["error_rate"] = 0.125
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    args = ["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
            "--home", str(tmp_path / "home")]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["error_rate_threshold"] == 0.125
    assert main(args) == 0
    assert "thresholds.error_rate 12.50%" in capsys.readouterr().out.splitlines()[0]
