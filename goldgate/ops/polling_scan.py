"""A static scan proving the service never polls RunPod: no loop, timer or cron handler reaches `/status`.

The live flow waits for RunPod's webhook; the only status call allowed is the operator's one-shot
recovery. The scan parses every module of `service/` and reports each place that could turn the
status call into polling: a RunPod `.status(...)` call, or a call of a function that reaches one
(followed across modules by name), inside a loop, comprehension or `map(...)`, handed to a timer, in a
function that also sleeps, calls itself again, or is a scheduled (cron) handler; and a `/status/` URL
built outside the client's own `status` method.

A rename must not hide a status call: any `.status(...)` call counts, whatever its receiver is called
(`rp = app.runpod` then `rp.status(...)`, a `gateway` parameter), and so does every other name a module
gives a function: `from m import f as g`, `g = f`, `poll = app.runpod.status`, `getattr(x, "status")`,
`partial(f, ...)`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

_SLEEPS = ("sleep", "call_later", "call_at", "Timer", "setInterval", "setTimeout", "every")
_SCHEDULED = ("scheduled", "on_scheduled", "cron", "on_cron")
# RunPod's status method: a call of it counts whatever its receiver. The other spellings count on a receiver
# that names RunPod or a client (`job_status` is also the API's own status route).
_STATUS = "status"
_STATUS_NAMED = ("get_status", "job_status", "poll_status")
# partial(f, x) is f, called later; so is a function a Python Worker hands to JavaScript (pyodide.ffi).
_BINDERS = ("partial", "partialmethod", "create_proxy", "create_once_callable")
_MAPPERS = ("map", "starmap")                # map(f, items) calls f once per item: a loop
# A function handed to a timer is called by it: setInterval(create_proxy(poll), 5000) polls as a loop does, and
# one that hands itself to call_soon runs again as a loop does.
_TIMERS = ("call_later", "call_at", "call_soon", "call_soon_threadsafe", "Timer", "setInterval", "setTimeout")
# RunPod's /status/<id>, and /stream/<id>, which answers a job's status and output as /status/ does; written with or
# without its leading slash (a client with a base URL takes `status/<id>`). The API's own /api/status/<job> is not it.
_STATUS_URL = re.compile(r"(?:(?<!api)/|^)(status|stream)/")

Aliases = dict[str, list[ast.expr]]
Named = tuple[str, str | None]  # (function name, its receiver's source text or None)


def _aliases(tree: ast.AST) -> Aliases:
    """What each other name a module gives a function stands for: imports `as`, assignments of a name,
    an attribute, `getattr(...)` or `partial(...)`. Module-wide: a name bound twice stands for both."""
    found: Aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname and alias.asname != alias.name:
                    found.setdefault(alias.asname, []).append(ast.Name(id=alias.name))
            continue
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and not (isinstance(value, ast.Name) and value.id == target.id):
                found.setdefault(target.id, []).append(value)
    return found


def _names(node: ast.AST, aliases: Aliases, seen: frozenset[str] = frozenset()) -> list[Named]:
    """Every function `node` may name (without calling it), through the module's aliases."""
    if isinstance(node, ast.Name):
        bound = aliases.get(node.id, []) if node.id not in seen else []
        return [n for value in bound for n in _names(value, aliases, seen | {node.id})] + [(node.id, None)]
    if isinstance(node, ast.Attribute):
        return [(node.attr, ast.unparse(node.value))]
    if isinstance(node, ast.Lambda):  # `poll = lambda: rp.status(rid)`: calling it calls what its body calls
        return [n for c in ast.walk(node.body) if isinstance(c, ast.Call) for n in _names(c.func, aliases, seen)]
    if isinstance(node, ast.Call) and node.args:
        callees = {name for name, _ in _names(node.func, aliases, seen)}
        if "getattr" in callees and len(node.args) >= 2:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                return [(attr.value, ast.unparse(node.args[0]))]
        if callees & set(_BINDERS):
            return _names(node.args[0], aliases, seen)
    return []


def _callees(call: ast.Call, aliases: Aliases) -> list[Named]:
    """What `call` calls: its function, the function a `map(f, ...)` calls for each item, and the function a
    timer calls later (`loop.call_later(5, f, ...)`, `setInterval(f, ms)`)."""
    named = _names(call.func, aliases)
    if call.args and any(name in _MAPPERS for name, _ in named):
        named += _names(call.args[0], aliases)
    if any(name in _TIMERS for name, _ in named):  # positional or by keyword: Timer(5, function=poll)
        named += [n for arg in [*call.args, *(k.value for k in call.keywords)] for n in _names(arg, aliases)]
    return named


def _is_status(name: str, receiver: str | None) -> bool:
    if name == _STATUS:
        return True
    return name in _STATUS_NAMED and receiver is not None and any(w in receiver.lower() for w in ("runpod", "client"))


def _is_mapper(node: ast.AST, aliases: Aliases) -> bool:
    return isinstance(node, ast.Call) and bool(node.args) and any(
        name in _MAPPERS for name, _ in _names(node.func, aliases))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


class _Graph:
    """Who calls what, by name, across every module scanned, and which functions reach RunPod's status."""

    def __init__(self, modules: Iterable[tuple[ast.AST, Aliases]]) -> None:
        self.calls: dict[str, set[str]] = {}
        self.reach: set[str] = set()
        for tree, aliases in modules:
            for fn in _functions(tree):
                named = [n for c in ast.walk(fn) if isinstance(c, ast.Call) for n in _callees(c, aliases)]
                self.calls.setdefault(fn.name, set()).update(name for name, _ in named)
                if any(_is_status(*n) for n in named):
                    self.reach.add(fn.name)
        grew = True
        while grew:
            grew = False
            for name, names in self.calls.items():
                if name not in self.reach and names & self.reach:
                    self.reach.add(name)
                    grew = True

    def calls_itself(self, name: str) -> bool:
        """Whether `name` calls itself again, directly or through the functions it calls."""
        todo, seen = list(self.calls.get(name, ())), set()
        while todo:
            callee = todo.pop()
            if callee == name:
                return True
            if callee not in seen:
                seen.add(callee)
                todo.extend(self.calls.get(callee, ()))
        return False


def reaching_status(trees: list[ast.AST]) -> set[str]:
    """Names of the functions that call RunPod's status, directly or through other functions of `trees`.

    Matched by name: a cron handler or loop that calls `recover(...)` reaches /status as surely as one
    that calls `app.runpod.status(...)` itself."""
    return _Graph((tree, _aliases(tree)) for tree in trees).reach


def _status_calls(node: ast.AST, aliases: Aliases, reach: set[str]) -> list[tuple[ast.Call, str]]:
    """(call, how) for each call under `node` that reaches /status; `how` names the helper, if any."""
    found = []
    for n in ast.walk(node):
        if not isinstance(n, ast.Call):
            continue
        named = _callees(n, aliases)
        if any(_is_status(*x) for x in named):
            found.append((n, ""))
            continue
        helper = next((name for name, _ in named if name in reach), None)
        if helper is not None:
            found.append((n, f" (through {helper}())"))
    return found


def _sleeps(node: ast.AST, aliases: Aliases) -> bool:
    return any(name in _SLEEPS for n in ast.walk(node) if isinstance(n, ast.Call) for name, _ in _names(n.func, aliases))


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _parse(text: str | bytes, where: str) -> tuple[ast.AST | None, list[str]]:
    try:
        return ast.parse(text), []
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        line = getattr(exc, "lineno", None) or 0
        return None, [f"{where}:{line}: cannot be parsed ({getattr(exc, 'msg', exc)}); the scan cannot vouch for it"]


def scan_source(text: str | bytes, where: str, reach: set[str] | None = None) -> list[str]:
    """Every polling hazard in one module, as `file:line: what`. `reach` (from `reaching_status`
    over every module) lets a call into another module's helper count; by default, this module's."""
    tree, problems = _parse(text, where)
    if tree is None:
        return problems
    aliases = _aliases(tree)
    graph = _Graph([(tree, aliases)])
    if reach is not None:
        graph.reach = set(reach)
    return _scan(tree, where, aliases, graph)


def _scan(tree: ast.AST, where: str, aliases: Aliases, graph: _Graph) -> list[str]:
    reach = graph.reach
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, _LOOPS) or _is_mapper(node, aliases):
            for call, how in _status_calls(node, aliases, reach):
                found.append(f"{where}:{call.lineno}: RunPod status call{how} inside a loop (line {node.lineno})")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            calls = _status_calls(node, aliases, reach)
            if calls and _sleeps(node, aliases):
                found.append(f"{where}:{calls[0][0].lineno}: RunPod status call{calls[0][1]} in {node.name}(), "
                             "which also sleeps or schedules itself")
            if calls and graph.calls_itself(node.name):
                found.append(f"{where}:{calls[0][0].lineno}: RunPod status call{calls[0][1]} in {node.name}(), "
                             "which calls itself again: it repeats like a loop")
            if calls and node.name in _SCHEDULED:
                found.append(f"{where}:{calls[0][0].lineno}: RunPod status call{calls[0][1]} in the scheduled "
                             f"handler {node.name}()")
            if node.name == _STATUS and (any(isinstance(n, _LOOPS) for n in ast.walk(node)) or _sleeps(node, aliases)
                                         or graph.calls_itself(node.name)):
                # the one place a /status/ URL may be built asks once: a loop in it polls under the client's name
                found.append(f"{where}:{node.lineno}: the RunPod client's status method {node.name}() loops, sleeps "
                             "or calls itself: it must ask once")
    found += _status_urls(tree, where)
    return sorted(set(found))


def _status_urls(tree: ast.AST, where: str) -> list[str]:
    """A RunPod /status/ or /stream/ URL written anywhere (a module-level constant too) but in the client's own
    status method, whose /status/ is the one-shot recovery's. Docstrings are prose, not URLs."""
    found: list[str] = []
    prose = {id(n.body[0].value) for n in ast.walk(tree)
             if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
             and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}

    def visit(node: ast.AST, fn: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.Constant) and id(child) not in prose and isinstance(child.value, str):
                url = _STATUS_URL.search(child.value)
                if url and not (url.group(1) == _STATUS and fn == _STATUS):
                    place = f"in {fn}()" if fn else "at module level"
                    found.append(f"{where}:{child.lineno}: a RunPod /{url.group(1)}/ URL is built {place}, outside "
                                 "the RunPod client's status method")
            visit(child, fn)

    visit(tree, None)
    return found


def scan_tree(root: Path) -> list[str]:
    """Scan every .py file under `root` (the service package), following helpers across its modules."""
    if not root.is_dir():
        return [f"{root}: no such directory; nothing to scan"]
    found: list[str] = []
    parsed: list[tuple[ast.AST, str, Aliases]] = []
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root.parent))
        tree, problems = _parse(path.read_bytes(), where)  # bytes: the file's own coding cookie decides
        found += problems
        if tree is not None:
            parsed.append((tree, where, _aliases(tree)))
    graph = _Graph((tree, aliases) for tree, _, aliases in parsed)
    for tree, where, aliases in parsed:
        found += _scan(tree, where, aliases, graph)
    return found
