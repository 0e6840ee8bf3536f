"""A local stack's api.client_daily_spend_limit_usd: it reaches the service `goldgate up` starts (none when the stacks
file sets none), and `goldgate reload` applies an edit of it to the running service, naming it among the settings
applied, with no job stopped: from then on a named client whose own spend today is at the limit is refused 429
`client_spend_limit_reached` while the API token is served, and `goldgate metrics --spend` shows that client's spend
against the limit."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import yaml
from stackfiles import stacks_file
from test_review32_fixspec_input_limits_local import _host_config, _with_api  # STAGING's api block set
from test_review34_reload_local_stack import CREATE, _platform, _reload, needs

from goldgate.cli import main
from goldgate.local import client_tokens
from goldgate.local.state import StackDir
from service import spend
from service.config import ServiceConfig

pytestmark = needs(Path("/proc/self").is_dir(), "/proc (the tests find processes through it)")


def test_the_stack_host_gives_its_service_the_clients_own_limit(home: Path) -> None:
    config = _host_config(home, _with_api(home, client_daily_spend_limit_usd=7.5))
    assert ServiceConfig.from_mapping(config).client_daily_spend_limit_usd == 7.5
    assert ServiceConfig.from_mapping(_host_config(home, stacks_file(home))).client_daily_spend_limit_usd is None


def test_a_reload_applies_the_clients_limit_and_a_client_over_it_is_refused_alone(home, capsys, monkeypatch) -> None:
    stack = "staging"
    platform = _platform(home, stack, monkeypatch)
    d = StackDir(home, stack)
    web = client_tokens.add_client(d, "web")
    platform.up(stack, timeout_s=90)
    try:
        api_url, operator = platform.status(stack).api_url, platform.api_token(stack)
        # web's jobs that ended today, as the service counted them: $0.75 over 3 jobs
        with sqlite3.connect(platform.db_path(stack)) as conn:
            conn.execute("INSERT INTO client_daily_spend (day, client, usd, jobs) VALUES (?, 'web', 0.75, 3)",
                         (spend.utc_day(time.time()),))
        with httpx.Client(base_url=api_url, timeout=30) as api:
            assert api.post("/api/queue/create", json=CREATE, headers={"Authorization": f"Bearer {web}"}
                            ).status_code == 202  # no client limit yet

        doc = yaml.safe_load(platform.stacks_file.read_text())
        doc["stacks"][stack]["api"]["client_daily_spend_limit_usd"] = 0.5
        platform.stacks_file.write_text(yaml.safe_dump(doc))
        code, out, err = _reload(home, stack, capsys, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert (result["changed"], result["settings_applied"]) == ([], ["api.client_daily_spend_limit_usd"]), result

        with httpx.Client(base_url=api_url, timeout=30) as api:
            refused = api.post("/api/queue/create", json=CREATE, headers={"Authorization": f"Bearer {web}"})
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "client_spend_limit_reached"
            assert int(refused.headers["retry-after"]) >= 1
            assert api.post("/api/queue/create", json=CREATE, headers={"Authorization": f"Bearer {operator}"}
                            ).status_code == 202
            today = api.get("/api/metrics", headers={"Authorization": f"Bearer {operator}"}).json()["daily_spend"]
        assert today["client_limit_usd"] == 0.5
        assert today["clients"] == [{"client": "web", "spend_usd": 0.75, "jobs": 3}]

        capsys.readouterr()
        assert main(["metrics", stack, "--spend", "--home", str(home)]) == 0
        text = capsys.readouterr().out
        assert "each client's own daily spend limit $0.5, api.client_daily_spend_limit_usd" in text, text
        assert "web: $0.75 over 3 jobs REACHED" in text, text
    finally:
        platform.down(stack)
