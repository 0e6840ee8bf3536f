"""Review 29 (local2): the cloud deployer and the operations commands spelt the stack config's `goldgate:` keys
themselves ("goldgate:cloudflareApiToken", "goldgate:cloudflareApiBase", "goldgate:apiToken", ...), beside
goldgate.spec's names, which the stack file's check and the Pulumi program read them by: a key renamed there would
have left these reading (and naming, in their advice) the old one. They now build them from goldgate.spec's names;
what they read and say is unchanged."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from goldgate import spec as specs
from goldgate.commands import ops
from goldgate.release.deployers import cloud

REPO = Path(__file__).resolve().parents[2]
FILES = ("goldgate/release/deployers/cloud.py", "goldgate/commands/ops.py")
SPELT = re.compile(rf"\b{specs.CONFIG_NAMESPACE}:({'|'.join(map(re.escape, specs.CONFIG_KEYS))})\b")


def _strings(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module, but its docstrings (prose, which a reader greps for the key)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs]


def test_no_goldgate_config_key_is_spelt_outside_goldgate_spec() -> None:
    spelt = [f"{name}:{line}: {text[:80]!r}" for name in FILES for line, text in _strings(REPO / name)
             if SPELT.search(text)]
    assert spelt == [], spelt


def test_the_keys_they_read_are_still_the_ones_the_program_reads() -> None:
    assert cloud.CLOUDFLARE_TOKEN_KEY == "goldgate:cloudflareApiToken"
    assert cloud.CLOUDFLARE_API_BASE_KEY == ops.API_BASE_KEY == "goldgate:cloudflareApiBase"
    assert cloud.IMAGE_KEY == "goldgate:spec.image"
    refused = dict(cloud._KNOWN_CAUSES)   # the advice for Cloudflare's error 10000 names the key to check
    assert any("check goldgate:cloudflareApiToken and the permissions" in advice for advice in refused.values())
