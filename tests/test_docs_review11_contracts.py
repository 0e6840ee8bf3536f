"""What docs/INTERFACES.md, service/README.md, README.md, docs/RUNBOOK.md and the DR page say of the code,
checked against the code: a route, a metrics column, a module, an import, the release id's form or a limit
changed without the docs fails here, not in front of a reader who trusted them."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _text(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_interfaces_public_api_gives_every_route_a_client_calls():
    from service.app import ROUTES, WEBHOOK_PATH

    section = _section(_text("docs/INTERFACES.md"), "Public API (client -> service)")
    routes = {f"{method} {pattern.pattern.strip('^$').split('(?P', 1)[0]}" for method, pattern, _ in ROUTES}
    routes.discard(f"POST {WEBHOOK_PATH}")  # RunPod's, in "Job input": the webhook URL sent with /run
    assert {r for r in routes if f"`{r}" not in section} == set(), "add the route to INTERFACES, Public API"


def test_interfaces_names_every_job_metrics_column():
    from service.migrate import apply_sqlite

    conn = sqlite3.connect(":memory:")
    try:
        apply_sqlite(conn, REPO / "migrations")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(job_metrics)")}
    finally:
        conn.close()
    text = _text("docs/INTERFACES.md")
    assert columns and {c for c in columns if f"`{c}`" not in text} == set(), \
        "name the job_metrics column in docs/INTERFACES.md (Public API, metrics)"


def test_service_readme_names_every_module():
    text = _text("service/README.md")
    modules = {p.name for p in (REPO / "service").glob("*.py")} - {"__init__.py"}
    assert {m for m in modules if f"`{m}`" not in text} == set(), "add the module to service/README.md"


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    return {name.split(".", 1)[0] for name in names}


def test_interfaces_dependency_direction_names_every_goldgate_part_that_imports_the_deployed_parts():
    importers = set()
    for path in (REPO / "goldgate").rglob("*.py"):
        if _imports_of(path) & {"service", "images"}:
            rel = path.relative_to(REPO).with_suffix("").parts
            importers.add(".".join(rel[:2]))  # goldgate.local, goldgate.migrations, ...
    paragraph = _text("docs/INTERFACES.md").split("Dependency direction:", 1)[1].split("\n\n", 1)[0]
    assert importers and {m for m in importers if m not in paragraph} == set(), \
        "name it in docs/INTERFACES.md, Dependency direction"


def test_readme_gives_each_golden_script_the_checklist_names():
    scripts = {p.relative_to(REPO).as_posix() for p in (REPO / "scripts/golden-tests").glob("*.mjs")}
    text = _text("README.md")
    assert scripts and {s for s in scripts if f"`node {s}" not in text} == set()


def test_runbook_gives_the_release_id_as_goldgate_build_makes_it():
    from goldgate.release.build import ReleaseIdentity

    found = re.search(r"[Tt]he release id is `([^`]+)` \((\d+) hex each\)",
                      " ".join(_text("docs/RUNBOOK.md").split()))
    assert found, "docs/RUNBOOK.md, Rollback: say what a release id is"
    form, width = found.group(1), int(found.group(2))
    identity = ReleaseIdentity(workflow_version="2026.11.0", git_commit="0123456789abcdef" * 2 + "01234567",
                               models_sha256="fedcba9876543210" * 4)
    filled = (form.replace("<workflow_version>", identity.workflow_version)
              .replace("<commit>", identity.git_commit[:width])
              .replace("<models.yaml sha256>", identity.models_sha256[:width]))
    assert filled == identity.tag


def test_every_goldgate_environment_variable_is_in_the_docs():
    names = set()
    for path in (REPO / "goldgate").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                  and isinstance(node.value, str) and re.fullmatch(r"GOLDGATE_[A-Z0-9_]+", node.value)}
    docs = _text("README.md") + "".join(p.read_text(encoding="utf-8") for p in (REPO / "docs").glob("*.md"))
    assert names and {n for n in names if f"`{n}" not in docs and f"${n}" not in docs} == set(), \
        "say what the variable does in README.md or docs/"


def _flat(name: str) -> str:
    return " ".join(_text(name).split())


def test_the_dr_targets_the_docs_give_are_the_ones_the_checklist_holds():
    # The DR page and the runbook tell an operator how old a drill may be and how fast it must restore; the
    # checklist's DR line turns red by its own constants. A change to one without the other misleads both ways.
    from goldgate.ops.checklist import DRILL_MAX_AGE_S, RTO_TARGET_S

    cloud_h, weekly_d, rto_min = DRILL_MAX_AGE_S["cloud"] // 3600, DRILL_MAX_AGE_S["local"] // 86_400, RTO_TARGET_S // 60
    dr, runbook = _flat("docs/D1_DISASTER_RECOVERY.md"), _flat("docs/RUNBOOK.md")
    assert f"| RTO | {rto_min} minutes |" in dr
    assert f"a cloud drill within {cloud_h} hours" in dr and f"drill within {weekly_d} days" in dr
    assert f"a passing drill within {cloud_h} hours for PROD" in runbook and f"within {weekly_d} days for" in runbook
    assert f"within the {rto_min}-minute RTO" in runbook


def test_service_readme_gives_the_local_servers_request_limits():
    # What a client tuning its requests reads: the local server's limits stand for the Worker's, so they must be
    # the numbers it enforces.
    from service import local_server as edge

    text = _flat("service/README.md")
    assert f"a request target over {edge.URL_LIMIT_BYTES:,} bytes (414 `uri_too_long`)" in text
    assert f"field lines over {edge.HEAD_LIMIT_BYTES:,} bytes as sent (431 `headers_too_large`)" in text
    assert f"A header block must arrive whole within {edge.HEAD_TIMEOUT_S:g} seconds (of the connection opening" in text
    assert f"a body within {edge.BODY_TIMEOUT_S:g} seconds of its header block" in text
    assert f"a new connection that begins no request for {edge.HEAD_TIMEOUT_S:g} seconds is closed" in text
    assert (f"after its first {edge.BODY_GRACE_S:g} seconds, at {edge.BODY_MIN_RATE_BPS} bytes a second or more "
            "(else 408 `body_too_slow`)") in text
    assert f"a client that takes none of an answer for {edge.WRITE_STALL_S:g} seconds is disconnected" in text
    assert f"uvicorn's {edge.UVICORN_SETTINGS['timeout_keep_alive']}-second keep-alive" in text
