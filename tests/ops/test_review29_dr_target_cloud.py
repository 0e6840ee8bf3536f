"""`goldgate stuck`, `prune` and `dr-drill` act on D1 with `--target cloud`, as every other command names the cloud
(recover, cancel, checklist, metrics and the release commands), and with GOLDGATE_TARGET=cloud; `--cloud` still works.
Before: `goldgate stuck staging --target cloud ...` was a usage error (exit 2, "unrecognized arguments"), so the
RUNBOOK's `recover ... --target cloud` lines printed by `stuck` had no `stuck --target cloud` to come back to."""

from __future__ import annotations

import json
import time

import pytest
from ops_fixtures import migrated_d1
from test_review16_stuck_cli import _JOB, _jobs

from goldgate.cli import main

TOKEN = "cf-stuck-target-token-0123456789ab"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    with migrated_d1(TOKEN) as cloud:
        _, d1, database = cloud
        for row in _jobs(time.time()):
            d1.query(database, _JOB, list(row))
        yield cloud


def _argv(standin, database: str, home, *how: str) -> list[str]:
    return ["stuck", "staging", *how, "--database-id", database, "--account-id", standin.account_id,
            "--api-base", standin.api_base, "--home", str(home), "--no-runpod", "--json"]


@pytest.mark.parametrize("how", [("--target", "cloud"), ("--target=cloud",), ("--cloud",),
                                 ("--cloud", "--target", "cloud")])
def test_stuck_lists_d1_with_target_cloud_as_with_cloud(cloud, tmp_path, capsys, how):
    standin, _, database = cloud
    assert main(_argv(standin, database, tmp_path / "home", *how)) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["target"] == "cloud"
    assert [j["id"] for j in data["jobs"]] == ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
    assert data["jobs"][0]["recover"] == f"goldgate recover {'a' * 32} --stack staging --target cloud"


def test_goldgate_target_cloud_in_the_environment_makes_stuck_read_d1(cloud, tmp_path, capsys, monkeypatch):
    standin, _, database = cloud
    monkeypatch.setenv("GOLDGATE_TARGET", "cloud")
    assert main(_argv(standin, database, tmp_path / "home")) == 1
    assert json.loads(capsys.readouterr().out)["target"] == "cloud"


@pytest.mark.parametrize("argv", [["stuck", "staging"], ["prune", "staging", "--keep-days", "30"],
                                  ["dr-drill", "staging"]])
def test_target_cloud_without_a_database_id_asks_for_one(tmp_path, capsys, monkeypatch, argv):
    # The cloud path, not the local stack (which has no database under this home).
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    assert main([*argv, "--target", "cloud", "--account-id", "0" * 32, "--home", str(tmp_path / "home")]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--database-id is required for the cloud" in line and "--target cloud" in line, line


def test_target_local_is_the_default_and_a_typo_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GOLDGATE_TARGET", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["stuck", "staging", "--target", "clodu", "--home", str(tmp_path / "home")])
    assert exit_.value.code == 2 and "'clodu' is not a target" in capsys.readouterr().err
    # A database id given to the local target reads nothing, and says how to reach the cloud.
    assert main(["stuck", "staging", "--target", "local", "--home", str(tmp_path / "home"),
                 "--database-id", "12345678-1234-1234-1234-123456789abc"]) == 1
    assert "add --cloud (or --target cloud)" in capsys.readouterr().err
