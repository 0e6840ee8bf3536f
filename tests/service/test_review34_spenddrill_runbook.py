"""RUNBOOK, "Clients get 429 spend_limit_reached", held to the code an on-call runs it against: the worked bound is
what the shipped stack files allow (the costliest job an execution timeout allows, as service/cost.py estimates it,
times the jobs in flight), and the grep it gives for the crossing finds the line the service writes, in the log file
a local stack writes it to."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_review34_spend_routes import LIMIT, _create, _finish, stack  # noqa: F401 (stack is a fixture)

from goldgate.local.state import STACK_LOGS
from goldgate.spec import load_local, load_pulumi
from service.cost import estimate_usd

REPO = Path(__file__).resolve().parents[2]


def _spend_section() -> str:
    text = (REPO / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    start = text.index("\n## Clients get 429 spend_limit_reached\n")
    return text[start:text.index("\n## ", start + 1)]


def test_the_runbooks_worked_bound_is_what_the_shipped_stacks_allow_over_their_limit() -> None:
    section = " ".join(_spend_section().split())
    stacks = [load_local("staging"), load_local("prod"), load_pulumi("staging"), load_pulumi("prod")]
    for spec in stacks:
        costliest = estimate_usd(spec.endpoint.execution_timeout_ms, spec.endpoint.cost_gpu_type,
                                 spec.endpoint.gpu_count, spec.price_per_gpu_second())
        assert costliest is not None, f"{spec.name}: no price for {spec.endpoint.cost_gpu_type}"
        bound = spec.api.max_jobs_in_flight * costliest
        price = costliest / spec.endpoint.gpu_count / (spec.endpoint.execution_timeout_ms / 1000)
        stated = (f"{spec.api.max_jobs_in_flight:,} jobs, {spec.endpoint.execution_timeout_ms // 1000} s, "
                  f"an RTX 4090 at ${price:.5f} a second in `service/cost.py`'s table, "
                  f"{spec.endpoint.gpu_count} GPU) that is ${bound:,.0f}")
        assert stated in section, f"{spec.name}'s bound is {stated!r}; the RUNBOOK says otherwise"


def test_the_runbooks_grep_finds_the_crossing_line_in_the_local_service_log(stack, log_lines) -> None:  # noqa: F811
    svc = stack()
    crossed_by = None
    for n in range(3):  # the third job's ending reaches LIMIT
        job_id = _create(svc, prompt=f"job {n}")[1]["job_id"]
        _finish(svc, job_id)
        crossed_by = job_id
    assert _create(svc, prompt="one more")[0] == 429

    grep = re.search(r"grep -h '([^']+)'\s+\$\{GOLDGATE_HOME:-\.goldgate\}/stacks/<stack>/logs/(\S+)`",
                     _spend_section())
    assert grep, "the RUNBOOK gives no grep for the crossing line in a local stack's logs"
    pattern, log_file = grep.groups()
    assert log_file in STACK_LOGS and log_file == "service.jsonl", log_file  # where the service's lines go
    found = [json.loads(line) for line in log_lines if re.search(pattern, line)]  # BRE and re agree on it
    assert [(line["event"], line["job_id"]) for line in found] == [("spend.limit_reached", crossed_by)]
    assert found[0]["data"]["limit_usd"] == LIMIT and found[0]["data"]["spend_usd"] >= LIMIT
    daily = svc.call("GET", "/api/metrics")[1]["daily_spend"]  # the limit the running service enforces
    assert daily["limit_usd"] == LIMIT and daily["spend_usd"] == found[0]["data"]["spend_usd"]
