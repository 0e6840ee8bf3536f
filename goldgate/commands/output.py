"""How commands print: a readable text form by default, the same facts as JSON with --json."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False))
    else:
        print(_encodable(render(data), sys.stdout))


def _encodable(text: str, stream: Any) -> str:
    """`text` as `stream` can encode it: a path with undecodable bytes (or any non-ASCII under an ASCII locale)
    is printed escaped instead of failing with UnicodeEncodeError after the command did its work."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        pass
    return text


def _finite(data: Any) -> Any:
    """`data` with every infinite or NaN number (an overflowing sum, absurd input) as null: JSON has no Infinity."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def progress(message: str) -> None:
    """Progress on long steps goes to stderr so --json output stays parseable."""
    print(f"… {message}", file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
