"""A static scan proving the service never polls RunPod: no loop, timer or cron handler reaches `/status`.

The live flow waits for RunPod's webhook; the only status call allowed is the operator's one-shot
recovery. The scan parses every module of `service/` and reports each place that could turn the
status call into polling: a RunPod `.status(...)` call, or a call of a function that reaches one
(followed across modules by name), inside a loop or comprehension, in a function that also sleeps,
or in a scheduled (cron) handler; and a `/status/` URL built outside the client's own `status` method.
"""

from __future__ import annotations

import ast
from pathlib import Path

_SLEEPS = ("sleep", "call_later", "call_at", "Timer", "setInterval", "setTimeout", "every")
_SCHEDULED = ("scheduled", "on_scheduled", "cron", "on_cron")


def _is_status_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    if node.func.attr not in ("status", "get_status", "job_status", "poll_status"):
        return False
    receiver = ast.unparse(node.func.value).lower()
    return "runpod" in receiver or "client" in receiver


def _called_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def reaching_status(trees: list[ast.AST]) -> set[str]:
    """Names of the functions that call RunPod's status, directly or through other functions of `trees`.

    Matched by name: a cron handler or loop that calls `recover(...)` reaches /status as surely as one
    that calls `app.runpod.status(...)` itself."""
    called: dict[str, set[str]] = {}
    reach: set[str] = set()
    for tree in trees:
        for fn in _functions(tree):
            called.setdefault(fn.name, set()).update(_called_name(n) for n in ast.walk(fn) if isinstance(n, ast.Call))
            if any(_is_status_call(n) for n in ast.walk(fn)):
                reach.add(fn.name)
    grew = True
    while grew:
        grew = False
        for name, names in called.items():
            if name not in reach and names & reach:
                reach.add(name)
                grew = True
    return reach


def _status_calls(node: ast.AST, reach: set[str]) -> list[tuple[ast.Call, str]]:
    """(call, how) for each call under `node` that reaches /status; `how` names the helper, if any."""
    found = []
    for n in ast.walk(node):
        if _is_status_call(n):
            found.append((n, ""))
        elif isinstance(n, ast.Call) and _called_name(n) in reach:
            found.append((n, f" (through {_called_name(n)}())"))
    return found


def _sleeps(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if name in _SLEEPS:
                return True
    return False


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
    return _scan(tree, where, reaching_status([tree]) if reach is None else reach)


def _scan(tree: ast.AST, where: str, reach: set[str]) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, _LOOPS):
            for call, how in _status_calls(node, reach):
                found.append(f"{where}:{call.lineno}: RunPod status call{how} inside a loop (line {node.lineno})")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            calls = _status_calls(node, reach)
            if calls and _sleeps(node):
                found.append(f"{where}:{calls[0][0].lineno}: RunPod status call{calls[0][1]} in {node.name}(), "
                             "which also sleeps or schedules itself")
            if calls and node.name in _SCHEDULED:
                found.append(f"{where}:{calls[0][0].lineno}: RunPod status call{calls[0][1]} in the scheduled "
                             f"handler {node.name}()")
            if node.name != "status":
                for inner in ast.walk(node):
                    if (isinstance(inner, ast.Constant) and isinstance(inner.value, str)
                            and inner.value.startswith("/status/")):
                        found.append(f"{where}:{inner.lineno}: a /status/ URL is built in {node.name}(), outside "
                                     "the RunPod client's status method")
    return sorted(set(found))


def scan_tree(root: Path) -> list[str]:
    """Scan every .py file under `root` (the service package), following helpers across its modules."""
    if not root.is_dir():
        return [f"{root}: no such directory; nothing to scan"]
    found: list[str] = []
    parsed: list[tuple[ast.AST, str]] = []
    for path in sorted(root.rglob("*.py")):
        where = str(path.relative_to(root.parent))
        tree, problems = _parse(path.read_bytes(), where)  # bytes: the file's own coding cookie decides
        found += problems
        if tree is not None:
            parsed.append((tree, where))
    reach = reaching_status([tree for tree, _ in parsed])
    for tree, where in parsed:
        found += _scan(tree, where, reach)
    return found
