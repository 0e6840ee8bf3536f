"""The operations commands (`checklist`, `metrics`, `prune`, `dr-drill --cloud`) call the Cloudflare API the stack
file names (`goldgate:cloudflareApiBase`, as the Pulumi program does: infra/program.py), not always
https://api.cloudflare.com/client/v4: an operator who routes the stack through an egress proxy had these commands
go around it. The value is held to the program's rule (an https:// URL, plain http:// only to this machine), and the
hidden --cloudflare-api-base / --api-base still overrides it.

The D1 stand-in serves the API on 127.0.0.1; every https:// call goes to a proxy that is not there, so a command that
still calls Cloudflare's own API fails here instead of reaching the internet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_checklist_cloud import CF_TOKEN, RP_KEY, cloud, seed_sql, seeded_image  # noqa: F401 (fixtures)

from goldgate import spec as specs
from goldgate.cli import main
from goldgate.cloudflare.api import CloudflareApi
from goldgate.cloudflare.d1 import D1Client
from goldgate.cloudflare.d1_standin import D1StandIn
from goldgate.migrations import apply_with

TOKEN = "cf-w1-api-base-token-0123456789abcdef"
KEY = "goldgate:cloudflareApiBase"


@pytest.fixture(autouse=True)
def no_way_out(monkeypatch):
    """Any https:// call goes to a proxy port nothing listens on: Cloudflare's own API is never reached."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    for name in ("RUNPOD_API_KEY", "RUNPOD_API_KEY_STAGING", "RUNPOD_API_KEY_PROD", "CLOUDFLARE_API_TOKEN",
                 "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "GOLDGATE_TARGET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def d1():
    with D1StandIn(TOKEN) as standin, CloudflareApi(TOKEN, standin.api_base) as api:
        client = D1Client(api, standin.account_id, poll_interval_s=0.0)
        database = client.create_database("goldgate-staging").uuid
        apply_with(lambda sql, params: client.query(database, sql, params))
        yield standin, database


def _stack_file(directory: Path, account: str, base: object) -> Path:
    """A copy of the repository's STAGING stack file for `account`, with goldgate:cloudflareApiBase set to `base`
    (left out when None)."""
    doc = yaml.safe_load((specs.STACKS_DIR / "Pulumi.staging.yaml").read_text())
    doc["config"]["goldgate:spec"]["cloud"]["cloudflare_account_id"] = account
    if base is not None:
        doc["config"][KEY] = base
    directory.mkdir(exist_ok=True)
    (directory / "Pulumi.staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return directory


def _repository_stacks(monkeypatch, directory: Path) -> None:
    """prune and dr-drill have no --stacks-dir: they read the repository's stacks/, here `directory`."""
    real = specs.load_pulumi
    monkeypatch.setattr(specs, "STACKS_DIR", directory)
    monkeypatch.setattr(specs, "load_pulumi", lambda name, where=directory: real(name, where))


def _queries(standin: D1StandIn) -> int:
    return sum(1 for method, path in standin.requests if method == "POST" and path.endswith("/query"))


def test_metrics_reads_d1_through_the_api_the_stack_file_names(d1, tmp_path, monkeypatch, capsys):
    standin, database = d1
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, standin.api_base)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    before = _queries(standin)
    code = main(["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
                 "--home", str(tmp_path / "home"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["stack"] == "staging"
    assert _queries(standin) > before, "metrics did not read the D1 the stack file's API serves"


def test_prune_deletes_through_the_api_the_stack_file_names(d1, tmp_path, monkeypatch, capsys):
    standin, database = d1
    _repository_stacks(monkeypatch, _stack_file(tmp_path / "stacks", standin.account_id, standin.api_base))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    before = _queries(standin)
    code = main(["prune", "staging", "--cloud", "--keep-days", "30", "--database-id", database, "--dry-run",
                 "--home", str(tmp_path / "home"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["target"] == "cloud"
    assert _queries(standin) > before


def test_the_checklist_reads_d1_through_the_api_the_stack_file_names(cloud, capsys, monkeypatch):  # noqa: F811
    path = cloud.stacks_dir / "Pulumi.staging.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"][KEY] = cloud.d1_api_base
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", CF_TOKEN)
    before = _queries(cloud.standin)
    code = main(["checklist", "staging", "--target", "cloud", "--stacks-dir", str(cloud.stacks_dir), "--home",
                 str(cloud.home), "--reports-dir", str(cloud.reports_dir), "--logs-dir", str(cloud.logs_dir),
                 "--database-id", cloud.database_id, "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 0, [c for c in data["checks"] if c.get("status") == "fail"]
    assert data["cloud"]["database_id"] == cloud.database_id
    assert _queries(cloud.standin) > before


def test_the_override_still_wins_over_the_stack_file(d1, tmp_path, monkeypatch, capsys):
    standin, database = d1
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, "https://cf-egress.example.com/client/v4")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    code = main(["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
                 "--home", str(tmp_path / "home"), "--cloudflare-api-base", standin.api_base, "--json"])
    assert code == 0, capsys.readouterr().err


def test_without_the_key_the_commands_still_call_cloudflares_own_api(d1, tmp_path, monkeypatch, capsys):
    standin, database = d1
    stacks = _stack_file(tmp_path / "stacks", standin.account_id, None)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    before = len(standin.requests)
    code = main(["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database,
                 "--home", str(tmp_path / "home")])
    assert code == 1
    assert "api.cloudflare.com" in capsys.readouterr().err   # through the (absent) proxy: not the stand-in
    assert len(standin.requests) == before


def _command(name: str, stacks: Path, home: Path) -> list[str]:
    database = "11111111-1111-1111-1111-111111111111"
    return {
        "checklist": ["checklist", "staging", "--target", "cloud", "--stacks-dir", str(stacks)],
        "metrics": ["metrics", "staging", "--target", "cloud", "--stacks-dir", str(stacks), "--database-id", database],
        "prune": ["prune", "staging", "--cloud", "--keep-days", "30", "--database-id", database],
        "dr-drill": ["dr-drill", "staging", "--cloud", "--database-id", database],
    }[name] + ["--home", str(home)]


@pytest.mark.parametrize("name", ["checklist", "metrics", "prune", "dr-drill"])
@pytest.mark.parametrize(("base", "said"), [
    ("http://cf-egress.example.com/client/v4", "plain http:// is allowed only to this machine"),
    ("https://user:pw@cf-egress.example.com/client/v4", "holds a user name or password"),
    ({"secure": "v1:abc"}, "is stored as a secret"),
], ids=["plain-http", "credentials", "secret"])
def test_a_stack_file_base_the_program_refuses_is_refused_before_any_credential(tmp_path, monkeypatch, capsys,
                                                                                name, base, said):
    # No credential is set: the command stops on the stack file's base, before it asks for one.
    stacks = _stack_file(tmp_path / "stacks", "0123456789abcdef0123456789abcdef", base)
    _repository_stacks(monkeypatch, stacks)
    assert main(_command(name, stacks, tmp_path / "home")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("goldgate: error: ") and "\n" not in err, err
    assert KEY in err and said in err, err
    assert "pw@" not in err and "user:pw" not in err
