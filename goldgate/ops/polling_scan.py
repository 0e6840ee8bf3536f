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
from bisect import bisect_left
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
# (function name, its receiver or None); the receiver's source text is only needed for the few names that
# count on a receiver naming RunPod (_STATUS_NAMED), so it is written out there and nowhere else.
Named = tuple[str, ast.expr | None]
_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _names(node: ast.AST, aliases: Aliases, seen: frozenset[str] = frozenset()) -> list[Named]:
    """Every function `node` may name (without calling it), through the module's aliases."""
    if isinstance(node, ast.Name):
        bound = aliases.get(node.id, []) if node.id not in seen else []
        return [n for value in bound for n in _names(value, aliases, seen | {node.id})] + [(node.id, None)]
    if isinstance(node, ast.Attribute):
        return [(node.attr, node.value)]
    if isinstance(node, ast.Lambda):  # `poll = lambda: rp.status(rid)`: calling it calls what its body calls
        return [n for c in ast.walk(node.body) if isinstance(c, ast.Call) for n in _names(c.func, aliases, seen)]
    if isinstance(node, ast.Call) and node.args:
        callees = {name for name, _ in _names(node.func, aliases, seen)}
        if "getattr" in callees and len(node.args) >= 2:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                return [(attr.value, node.args[0])]
        if callees & set(_BINDERS):
            return _names(node.args[0], aliases, seen)
    return []


def _callees(call: ast.Call, named: list[Named], aliases: Aliases) -> list[Named]:
    """What `call` calls: its function (`named`, what call.func names), the function a `map(f, ...)` calls for
    each item, and the function a timer calls later (`loop.call_later(5, f, ...)`, `setInterval(f, ms)`)."""
    named = list(named)
    if call.args and any(name in _MAPPERS for name, _ in named):
        named += _names(call.args[0], aliases)
    if any(name in _TIMERS for name, _ in named):  # positional or by keyword: Timer(5, function=poll)
        named += [n for arg in [*call.args, *(k.value for k in call.keywords)] for n in _names(arg, aliases)]
    return named


def _is_status(name: str, receiver: ast.expr | None) -> bool:
    if name == _STATUS:
        return True
    return name in _STATUS_NAMED and receiver is not None and any(
        w in ast.unparse(receiver).lower() for w in ("runpod", "client"))


class _Call:
    """One call of a module, with what the rules ask of it worked out once."""

    __slots__ = ("callees", "depth", "end", "mapper", "node", "position", "sleeps", "status")

    def __init__(self, node: ast.Call, position: int, depth: int, end: int, aliases: Aliases) -> None:
        self.node, self.position, self.depth, self.end = node, position, depth, end
        named = _names(node.func, aliases)
        self.sleeps = any(name in _SLEEPS for name, _ in named)
        self.mapper = bool(node.args) and any(name in _MAPPERS for name, _ in named)
        self.callees = _callees(node, named, aliases)
        self.status = any(_is_status(*n) for n in self.callees)

    def how(self, reach: set[str]) -> str | None:
        """How it reaches /status, in a finding's words: "" by calling it, " (through f())" by calling a
        function of `reach`; None when it does not."""
        if self.status:
            return ""
        helper = next((name for name, _ in self.callees if name in reach), None)
        return None if helper is None else f" (through {helper}())"


Scope = tuple[ast.AST, int, int]  # a node, its position in the walk and the position after all under it


class _Module:
    """What every rule needs of one module, gathered in one walk of its tree: each rule used to walk the
    tree again, and again under each loop and function (ten walks and more a module, most of a checklist
    run's scan).

    Positions are the walk's pre-order, so the nodes under a node are the ones from its position up to its
    end. Where an order shows in a finding (the first status call a function's finding names, the first
    helper a rebound name stands for) it is ast.walk's, which goes breadth first: by depth, then position."""

    def __init__(self, tree: ast.AST, where: str) -> None:
        self.where = where
        self.aliases: Aliases = {}
        self.prose: set[int] = set()  # ids of the docstrings' constants
        self.strings: list[tuple[ast.Constant, str | None]] = []  # each str constant, and its function
        bindings: list[tuple[int, int, str, ast.expr]] = []  # (depth, position, name, what it stands for)
        calls: list[tuple[ast.Call, int, int]] = []  # (call, position, depth)
        functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, int]] = []
        loops: list[tuple[ast.AST, int]] = []
        ends: dict[int, int] = {}
        position = 0
        todo: list[tuple[ast.AST, int, str | None] | int] = [(tree, 0, None)]
        while todo:
            item = todo.pop()
            if isinstance(item, int):  # all under the node at this position is numbered
                ends[item] = position
                continue
            node, depth, fn = item
            here = position
            position += 1
            if isinstance(node, ast.Constant):
                if isinstance(node.value, str):
                    self.strings.append((node, fn))
                continue  # nothing under it
            if isinstance(node, ast.Call):
                calls.append((node, here, depth))
                todo.append(here)
            elif isinstance(node, _FUNCTIONS):
                functions.append((node, here))
                todo.append(here)
                fn = node.name
            elif isinstance(node, _LOOPS):
                loops.append((node, here))
                todo.append(here)
            elif isinstance(node, ast.ImportFrom):
                bindings += [(depth, here, alias.asname, ast.Name(id=alias.name)) for alias in node.names
                             if alias.asname and alias.asname != alias.name]
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                value = node.value
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bindings += [(depth, here, target.id, value) for target in targets
                             if isinstance(target, ast.Name)
                             and not (isinstance(value, ast.Name) and value.id == target.id)]
            if isinstance(node, _DOCUMENTED) and node.body and isinstance(node.body[0], ast.Expr) \
                    and isinstance(node.body[0].value, ast.Constant):
                self.prose.add(id(node.body[0].value))
            children: list[ast.AST] = []
            for field in node._fields:  # ast.iter_child_nodes, less Load/Store (shared, and never a finding)
                value = getattr(node, field, None)
                if isinstance(value, list):
                    children += [child for child in value if isinstance(child, ast.AST)]
                elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                    children.append(value)
            todo += [(child, depth + 1, fn) for child in reversed(children)]
        # Module-wide, in ast.walk's order: a name bound twice stands for both, the first met first.
        for _, _, name, value in sorted(bindings, key=lambda binding: binding[:2]):
            self.aliases.setdefault(name, []).append(value)
        self.calls = [_Call(node, here, depth, ends[here], self.aliases) for node, here, depth in calls]
        self._positions = [call.position for call in self.calls]
        self.functions = [(node, here, ends[here]) for node, here in functions]
        self.loops: list[Scope] = [(node, here, ends[here]) for node, here in loops]

    def calls_under(self, start: int, end: int) -> list[_Call]:
        """The calls under the node at `start` (that node too), in pre-order."""
        return self.calls[bisect_left(self._positions, start):bisect_left(self._positions, end)]


class _Graph:
    """Who calls what, by name, across every module scanned, and which functions reach RunPod's status."""

    def __init__(self, modules: Iterable[_Module]) -> None:
        self.calls: dict[str, set[str]] = {}
        self.reach: set[str] = set()
        for module in modules:
            for fn, start, end in module.functions:
                under = module.calls_under(start, end)
                names = self.calls.setdefault(fn.name, set())
                names.update(name for call in under for name, _ in call.callees)
                if any(call.status for call in under):
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
    return _Graph(_Module(tree, "") for tree in trees).reach


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
    module = _Module(tree, where)
    graph = _Graph([module])
    if reach is not None:
        graph.reach = set(reach)
    return _scan(module, graph)


def _status_calls(module: _Module, start: int, end: int, reach: set[str]) -> list[tuple[_Call, str]]:
    """(call, how) for each call under the node at `start` that reaches /status; `how` names the helper,
    if any."""
    found = []
    for call in module.calls_under(start, end):
        how = call.how(reach)
        if how is not None:
            found.append((call, how))
    return found


def _scan(module: _Module, graph: _Graph) -> list[str]:
    where, reach = module.where, graph.reach
    found: list[str] = []
    loops = module.loops + [(call.node, call.position, call.end) for call in module.calls if call.mapper]
    for node, start, end in loops:
        for call, how in _status_calls(module, start, end, reach):
            found.append(f"{where}:{call.node.lineno}: RunPod status call{how} inside a loop "
                         f"(line {node.lineno})")
    for fn, start, end in module.functions:
        calls = _status_calls(module, start, end, reach)
        sleeps = any(call.sleeps for call in module.calls_under(start, end))
        if calls:
            # the one ast.walk(fn) meets first: the shallowest, then the first in the source's order
            first, how = min(calls, key=lambda hit: (hit[0].depth, hit[0].position))
            line = first.node.lineno
            if sleeps:
                found.append(f"{where}:{line}: RunPod status call{how} in {fn.name}(), which also sleeps or "
                             "schedules itself")
            if graph.calls_itself(fn.name):
                found.append(f"{where}:{line}: RunPod status call{how} in {fn.name}(), which calls itself "
                             "again: it repeats like a loop")
            if fn.name in _SCHEDULED:
                found.append(f"{where}:{line}: RunPod status call{how} in the scheduled handler {fn.name}()")
        if fn.name == _STATUS and (any(start <= at < end for _, at, _ in module.loops) or sleeps
                                   or graph.calls_itself(fn.name)):
            # the one place a /status/ URL may be built asks once: a loop in it polls under the client's name
            found.append(f"{where}:{fn.lineno}: the RunPod client's status method {fn.name}() loops, sleeps "
                         "or calls itself: it must ask once")
    found += _status_urls(module)
    return sorted(set(found))


def _status_urls(module: _Module) -> list[str]:
    """A RunPod /status/ or /stream/ URL written anywhere (a module-level constant too) but in the client's own
    status method, whose /status/ is the one-shot recovery's. Docstrings are prose, not URLs."""
    found: list[str] = []
    for constant, fn in module.strings:
        if id(constant) in module.prose:
            continue
        url = _STATUS_URL.search(constant.value)
        if url and not (url.group(1) == _STATUS and fn == _STATUS):
            place = f"in {fn}()" if fn else "at module level"
            found.append(f"{module.where}:{constant.lineno}: a RunPod /{url.group(1)}/ URL is built {place}, "
                         "outside the RunPod client's status method")
    return found


def scan_tree(root: Path) -> list[str]:
    """Scan every .py file under `root` (the service package), following helpers across its modules."""
    if not root.is_dir():
        return [f"{root}: no such directory; nothing to scan"]
    found: list[str] = []
    modules: list[_Module] = []
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root.parent))
        tree, problems = _parse(path.read_bytes(), where)  # bytes: the file's own coding cookie decides
        found += problems
        if tree is not None:
            modules.append(_Module(tree, where))
    graph = _Graph(modules)
    for module in modules:
        found += _scan(module, graph)
    return found
