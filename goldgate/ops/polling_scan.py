"""A static scan proving the service never polls RunPod: no loop, timer or cron handler reaches `/status`.

The live flow waits for RunPod's webhook; the only status call allowed is the operator's one-shot
recovery. The scan parses every module of `service/` and reports each place that could turn the
status call into polling: a RunPod `.status(...)` call inside a loop, in a function that also
sleeps, or in a scheduled (cron) handler; and a `/status/` URL built outside the client's own
`status` method.
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


def _status_calls(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if _is_status_call(n)]


def _sleeps(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
            if name in _SLEEPS:
                return True
    return False


def scan_source(text: str, where: str) -> list[str]:
    """Every polling hazard in one module, as `file:line: what`."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return [f"{where}:{exc.lineno}: cannot be parsed ({exc.msg}); the scan cannot vouch for it"]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            for call in _status_calls(node):
                found.append(f"{where}:{call.lineno}: RunPod status call inside a loop (line {node.lineno})")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            calls = _status_calls(node)
            if calls and _sleeps(node):
                found.append(f"{where}:{calls[0].lineno}: RunPod status call in {node.name}(), which also "
                             "sleeps or schedules itself")
            if calls and node.name in _SCHEDULED:
                found.append(f"{where}:{calls[0].lineno}: RunPod status call in the scheduled handler "
                             f"{node.name}()")
            if node.name != "status":
                for inner in ast.walk(node):
                    if (isinstance(inner, ast.Constant) and isinstance(inner.value, str)
                            and inner.value.startswith("/status/")):
                        found.append(f"{where}:{inner.lineno}: a /status/ URL is built in {node.name}(), outside "
                                     "the RunPod client's status method")
    return sorted(set(found))


def scan_tree(root: Path) -> list[str]:
    """Scan every .py file under `root` (the service package)."""
    if not root.is_dir():
        return [f"{root}: no such directory; nothing to scan"]
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        found += scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(root.parent)))
    return found
