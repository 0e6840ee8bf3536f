"""docs/LOG_EVENTS.md lists exactly the log events the code can emit, each under its component with the
levels the code logs it at: an event added, renamed or re-levelled without the catalogue fails here, before an
operator meets it in an alert with nowhere to look it up. The commands and runbook sections it sends the
operator to must exist too."""

from __future__ import annotations

import ast
import itertools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from goldgate.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "docs/LOG_EVENTS.md"
SOURCES = ("service", "images/worker", "goldgate", "infra")
LEVELS = ("debug", "info", "warning", "error", "critical")
EVENT = re.compile(r"^[a-z][a-z0-9_.]{1,79}$")  # docs/logging-schema-v1.json, properties.event.pattern

# The component each emitting file's lines carry (the logger it is handed decides; object_store.py writes
# through the stack host's "orchestrator" logger, worker_process.py's preflight lines through a WorkerLog).
COMPONENT_OF = {
    "service/": "service",
    "images/worker/": "worker",
    "goldgate/local/runpod/": "runpod-emulator",
    "goldgate/local/comfyui/": "comfyui-emulator",
    "goldgate/local/stackhost.py": "orchestrator",
    "goldgate/local/object_store.py": "orchestrator",
    "goldgate/local/worker_process.py": "orchestrator",
    "goldgate/release/ledger.py": "release",
}
# The loggers themselves: their calls pass on whatever event they were given.
LOGGER_MODULES = ("service/logs.py", "goldgate/logs.py", "images/worker/logs.py", "goldgate/local/runpod/eventlog.py")
# Calls named like a log method that are not one.
NOT_LOG_CALLS = {("goldgate/cli.py", "sub.choices[args.command].error"),
                 # a ReadableStream controller's error(): cuts the Worker's response body, logs nothing
                 ("service/cloudflare_entry.py", "controller.error(")}


def _calls(rel: str, name: str) -> list[ast.Call]:
    """The calls of `name` (a function, or a method on any object) in file `rel`."""
    tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _called_name(n.func) == name]


def _ignored_webhooks() -> set[tuple[str, str]]:
    # Transitions._ignore logs `webhook.<reason>`, "no_change" at info and the others at warning. Its reason is a
    # literal, or `decision`: a `_decide` outcome other than "applied" (which `apply` does not pass on).
    from service.transitions import _RANK, _decide

    reasons = set()
    for call in _calls("service/transitions.py", "_ignore"):
        reason = call.args[4]
        if isinstance(reason, ast.Name) and reason.id == "decision":
            reasons |= {_decide(current, new) for current, new in itertools.product(_RANK, repeat=2)} - {"applied"}
        else:
            assert _strings(reason) is not None, f"_ignore's reason {ast.unparse(reason)}: update this test"
            reasons |= _strings(reason)
    return {(f"webhook.{r}", "info" if r == "no_change" else "warning") for r in reasons}


def _sdk_lines() -> set[tuple[str, str]]:
    from images.worker.sdk_logs import SDK_LEVELS

    return {(f"runpod_sdk.{level}", level) for level in SDK_LEVELS.values()}


def _line_streams() -> set[tuple[str, str]]:
    # sdk_logs.install: V1LineStream(stream, log, level, event) wraps each plain line as that event.
    return {(call.args[3].value, call.args[2].value) for call in _calls("images/worker/sdk_logs.py", "V1LineStream")}


def _request_line() -> set[tuple[str, str]]:
    # Logger.write_request_line: a request during which nothing logged an event is one line under this name.
    [default] = [call.args[1].value for call in _calls("service/logs.py", "pop")
                 if isinstance(call.args[0], ast.Constant) and call.args[0].value == "event"]
    return {(default, "info")}


def _release_lines() -> set[tuple[str, str]]:
    # ledger.release_line logs each entry under the (event, level) RELEASE_EVENTS gives its shape, or RELEASE_RECORDED.
    from goldgate.release.ledger import RELEASE_EVENTS, RELEASE_RECORDED

    return set(RELEASE_EVENTS.values()) | {RELEASE_RECORDED}


# Log calls whose event or level is not written at the call: (file, the call's source) -> what they emit.
DYNAMIC = {
    ("service/transitions.py", "log.log(level, f'webhook.{reason}', reason=reason"): _ignored_webhooks,
    ("images/worker/sdk_logs.py", "log.log(level, f'runpod_sdk.{level}'"): _sdk_lines,
    ("images/worker/sdk_logs.py", "self._log.log(self._level, self._event"): _line_streams,
    ("images/worker/sdk_logs.py", "self._log.log(level, 'python_log'"): lambda: {("python_log", lv) for lv in LEVELS},
    ("service/local_server.py", "self.log.log(level, 'service.server_log'"):
        lambda: {("service.server_log", "warning"), ("service.server_log", "error")},  # uvicorn's records
    ("goldgate/release/ledger.py", "log.log(level, event"): _release_lines,
}
# Functions that log the event (and level) their callers pass: name -> (event argument index, level).
# A level is a fixed name, or ("arg", index) plus the levels the function adds on its own.
FORWARDERS: dict[str, tuple[int, object]] = {
    "_refuse": (1, "error"),  # worker_process.py
    "log_refusal": (1, ("arg", 3, {"error"})),  # service/routes.py: any non-ApiError is an error
    "on_event": (0, "info"),  # the RunPod backend's callback, RunPodEmulator._event
    "_held": (2, "info"),  # backend.py: a stale worker call, through on_event
}
FORWARDING_CALLS = {
    ("goldgate/local/worker_process.py", "log.error(event"),
    ("service/routes.py", "log.log(level, event"),
    ("service/routes.py", "log.log('error', event"),
    ("goldgate/local/runpod/emulator.py", "self.log.info(event"),
    ("goldgate/local/runpod/backend.py", "self.on_event(ignored_event"),
}


def _files() -> Iterator[tuple[str, ast.Module]]:
    for root in SOURCES:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel not in LOGGER_MODULES:
                yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _component(rel: str) -> str:
    for prefix, component in COMPONENT_OF.items():
        if rel.startswith(prefix):
            return component
    raise AssertionError(f"{rel} logs events but has no component in COMPONENT_OF; add it")


def _strings(node: ast.expr) -> set[str] | None:
    """The strings `node` can be when it is a literal or a choice between literals; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        return body | orelse if body is not None and orelse is not None else None
    return None


def _method_levels(func: ast.expr) -> set[str] | None:
    """`log.info(...)` -> {"info"}; `(log.info if c else log.warning)(...)` -> both; else None."""
    if isinstance(func, ast.Attribute) and func.attr in LEVELS:
        return {func.attr}
    if isinstance(func, ast.IfExp):
        body, orelse = _method_levels(func.body), _method_levels(func.orelse)
        return body | orelse if body is not None and orelse is not None else None
    return None


def _called_name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _forwarded(call: ast.Call, name: str) -> set[tuple[str, str]]:
    event_at, level = FORWARDERS[name]
    events = _strings(call.args[event_at]) if len(call.args) > event_at else None
    if isinstance(level, str):
        levels: set[str] | None = {level}
    else:
        _, level_at, always = level
        given = _strings(call.args[level_at]) if len(call.args) > level_at else None
        levels = None if given is None else given | always
    if events is None or levels is None:
        raise AssertionError(f"{ast.unparse(call)[:120]}: pass {name} a literal event and level")
    return {(e, lv) for e in events for lv in levels}


# The worker's entry script logs in bash: `log_event <level> <event> ...` (its function writes the v1 line).
SHELL_SOURCES = {"images/worker/start.sh": "worker"}


def _shell_lines() -> set[tuple[str, str, str]]:
    found = set()
    for rel, component in SHELL_SOURCES.items():
        for level, event in re.findall(r"^\s*log_event (\S+) (\S+)", (REPO / rel).read_text(encoding="utf-8"),
                                       re.MULTILINE):
            found.add((component, event, level))
    assert found, "start.sh calls log_event nowhere: update SHELL_SOURCES"
    return found


def emitted() -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """Every (component, event, level) the code can log, and the DYNAMIC/FORWARDING_CALLS sites it used."""
    found = {("service", e, lv) for e, lv in _request_line()} | _shell_lines()
    used: set[tuple[str, str]] = set()
    for rel, tree in _files():
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            source = ast.unparse(call)
            site = next((s for s in (*DYNAMIC, *FORWARDING_CALLS, *NOT_LOG_CALLS)
                         if s[0] == rel and source.startswith(s[1])), None)
            if site is not None:
                used.add(site)
                if site in DYNAMIC:
                    found |= {(_component(rel), e, lv) for e, lv in DYNAMIC[site]()}
                continue
            name = _called_name(call.func)
            if name in FORWARDERS:
                found |= {(_component(rel), e, lv) for e, lv in _forwarded(call, name)}
                continue
            levels = _method_levels(call.func)
            args = call.args
            if levels is None and name == "log" and len(args) >= 2:
                levels, args = _strings(args[0]) or set(), args[1:]
            if levels is None or not args:
                continue
            events = _strings(args[0])
            assert events is not None and levels, (
                f"{rel}:{call.lineno}: `{source[:100]}` logs an event or level this test cannot read; "
                "write both as literals, or list the call in DYNAMIC with what it emits")
            found |= {(_component(rel), e, lv) for e in events for lv in levels}
    return found, used


def catalogue() -> set[tuple[str, str, str]]:
    """(component, event, level) for every row of docs/LOG_EVENTS.md's event tables."""
    rows, component = set(), None
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## .*`component: (\S+)`", line)
        if heading:
            component = heading.group(1)
        elif line.startswith("## "):
            component = None
        row = re.match(r"^\| `([^`]+)` \| ([a-z, ]+) \|", line)
        if row and component:
            rows |= {(component, row.group(1), level.strip()) for level in row.group(2).split(",")}
    return rows


def _table(entries: set[tuple[str, str, str]]) -> str:
    return "\n".join(f"  {c}: {e} ({lv})" for c, e, lv in sorted(entries)) or "  (none)"


def test_every_logged_event_is_in_the_catalogue_with_its_levels():
    code, _ = emitted()
    missing = code - catalogue()
    assert not missing, f"docs/LOG_EVENTS.md lacks these events (component: event (level)):\n{_table(missing)}"


def test_the_catalogue_lists_no_event_the_code_no_longer_logs():
    stale = catalogue() - emitted()[0]
    assert not stale, f"docs/LOG_EVENTS.md lists events the code does not log at that level:\n{_table(stale)}"


def test_every_listed_dynamic_log_call_still_exists():
    _, used = emitted()
    gone = (set(DYNAMIC) | FORWARDING_CALLS | NOT_LOG_CALLS) - used
    assert not gone, f"no such call any more; update this test's tables: {sorted(gone)}"


def test_every_event_name_fits_the_schema():
    bad = {e for _, e, _ in emitted()[0] if not EVENT.match(e)}
    assert not bad, f"event names docs/logging-schema-v1.json refuses: {sorted(bad)}"


def _section(title: str) -> str:
    return CATALOGUE.read_text(encoding="utf-8").split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_event_to_page_on_is_a_catalogued_warning_or_worse():
    paged = set(re.findall(r"^- `([^`]+)` \(([a-z-]+)\)", _section("What to page on"), re.MULTILINE))
    assert paged, "the page list is empty"
    levels = catalogue()
    wrong = {(e, c) for e, c in paged if not {(c, e, lv) for lv in LEVELS[2:]} & levels}
    assert not wrong, f"paged events that are no warning, error or critical of that component: {sorted(wrong)}"


# The catalogue's placeholders, as an operator fills them in.
PLACEHOLDERS = {"<job_id>": "0" * 32, "<stack>": "staging"}


def _commands() -> list[str]:
    text = CATALOGUE.read_text(encoding="utf-8")
    return sorted({c for c in re.findall(r"`(goldgate [^`]+)`", text)})


def test_the_catalogue_sends_the_operator_to_commands():
    assert len(_commands()) >= 5


@pytest.mark.parametrize("command", _commands())
def test_a_command_the_catalogue_gives_parses(command: str) -> None:
    filled = command
    for placeholder, value in PLACEHOLDERS.items():
        filled = filled.replace(placeholder, value)
    try:
        build_parser().parse_args(shlex.split(filled)[1:])
    except SystemExit as exc:
        pytest.fail(f"docs/LOG_EVENTS.md: `{command}` does not parse (exit {exc.code})")


def test_every_runbook_section_the_catalogue_names_exists():
    runbook = (REPO / "docs/RUNBOOK.md").read_text(encoding="utf-8")
    headings = {h.strip('"') for h in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    named = set(re.findall(r"RUNBOOK, \"([^\"]+)\"", CATALOGUE.read_text(encoding="utf-8")))
    assert named, "the catalogue names no runbook section"
    assert named <= headings, f"no such section in docs/RUNBOOK.md: {sorted(named - headings)}"


def test_every_route_the_catalogue_gives_exists():
    from service.app import ROUTES

    named = set(re.findall(r"`(GET|POST) (/(?:api/|healthz)[^`?]*)`", CATALOGUE.read_text(encoding="utf-8")))
    assert named, "the catalogue names no route"
    unknown = {(m, p) for m, p in named
               if not any(m == method and pattern.match(p.replace("<job_id>", "0" * 32))
                          for method, pattern, _ in ROUTES)}
    assert not unknown, f"no such route in service/app.py: {sorted(unknown)}"
