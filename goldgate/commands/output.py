"""How commands print: a readable text form by default, the same facts as JSON with --json."""

from __future__ import annotations

import argparse
import codecs
import dataclasses
import functools
import json
import math
import os
import sys
import threading
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from goldgate.errors import OutputError


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        say(json.dumps(_finite(data), indent=2, sort_keys=True, default=str, allow_nan=False))
    else:
        # The render's own line breaks are kept; a value's are not: a newline inside one (a lock holder's purpose, a
        # ledger reason, a name read from a file) would start a line the render never wrote, a fake status line.
        say(escape_controls(render(one_line_values(data)), keep="\n\t"))


def one_line_values(data: Any) -> Any:
    """`data` with every string in it (keys too) escaped as one line: control characters as \\n, \\t, \\x1b. A
    render that prints anything but the data `emit` hands it (a report object, a path it holds) passes that through
    here too, or a value's newline starts a line the render never wrote."""
    if isinstance(data, str):
        return escape_controls(data)
    if isinstance(data, Mapping):
        return {one_line_values(k): one_line_values(v) for k, v in data.items()}
    if isinstance(data, list):
        return [one_line_values(v) for v in data]
    if type(data) is tuple:  # a named tuple keeps its fields as they are
        return tuple(one_line_values(v) for v in data)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        # A copy of the same type (a report renders itself): its methods still work on the escaped fields.
        return dataclasses.replace(data, **{f.name: one_line_values(getattr(data, f.name))
                                            for f in dataclasses.fields(data) if f.init})
    return data


def say(text: str, end: str = "\n") -> None:
    """`text` as a line on stdout (as its reader can read it: `encodable`), flushed: a write that fails where stdout
    is redirected (a full disk) is an OutputError naming stdout, not an OSError the CLI blamed on the state dir, or a
    short output's failed flush at exit, which Python reports as "Exception ignored" with exit code 120."""
    try:
        print(encodable(text, sys.stdout), end=end)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (`| head`): the rest of the output goes nowhere, and the command ends quietly with the exit
        # code of its result. Raised to the CLI, it made that 0 whenever the reader left first: `goldgate checklist
        # prod 2>&1 | head -3` under pipefail passed a NOT READY stack, or not, as the race went.
        to_devnull(sys.stdout)
    except OSError as exc:
        to_devnull(sys.stdout)
        raise OutputError(f"cannot write the output to stdout: {exc.strerror or exc}; check where it is "
                          "redirected (a full disk?)") from None


def to_devnull(stream: Any) -> None:
    """Point `stream` (stdout, stderr) at /dev/null once writing it failed: what is still buffered would fail again
    when Python flushes it at exit ("Exception ignored", exit code 120)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):  # no file descriptor (a capture in tests): nothing is flushed at exit
        pass


# What goldgate's own words print as where the reader's encoding has no such character: `… staging: up` under LC_ALL=C
# reads as "... staging: up", not "\u2026 staging: up".
_PLAIN = str.maketrans({"…": "..."})


def encodable(text: str, stream: Any) -> str:
    """`text` as the reader of `stream` can read it: a path with undecodable bytes (or any non-ASCII under an ASCII
    locale) is printed escaped instead of failing with UnicodeEncodeError after the command did its work, or reaching
    an ASCII terminal as UTF-8 bytes it shows as mojibake."""
    encoding = reader_encoding(stream)
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.translate(_PLAIN).encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        pass
    return text


def reader_encoding(stream: Any) -> str:
    """The encoding `stream`'s reader reads: the stream's own, but ASCII where Python turned its UTF-8 mode on by
    itself (PEP 540) because the locale is C or POSIX (LC_ALL=C, LANG=C, none set). Python then writes UTF-8 to a
    terminal or log whose locale says ASCII: every `…` and non-ASCII path reached it as bytes it cannot show. UTF-8
    asked for by name (PYTHONUTF8, -X utf8, PYTHONIOENCODING, a UTF-8 locale missing here) is kept."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        if codecs.lookup(encoding).name == "utf-8" and _ascii_locale():
            return "ascii"
    except LookupError:
        pass
    return encoding


# The LC_CTYPE Python sets for itself (and the processes it starts) when it coerces the C locale (PEP 538).
_COERCED_CTYPES = frozenset({"C.UTF-8", "C.utf8", "UTF-8"})


@functools.cache
def _ascii_locale() -> bool:
    if not sys.flags.utf8_mode or "utf8" in sys._xoptions:
        return False  # off: the stream's encoding is the locale's own; -X utf8: asked for
    if os.environ.get("PYTHONUTF8") or os.environ.get("PYTHONIOENCODING"):
        return False
    # On by itself: the locale in effect is C. Named so by the user (LC_ALL=C, LANG=POSIX): they read ASCII. A UTF-8
    # locale they named that this machine lacks (LANG=en_US.UTF-8 over ssh) or none at all (a bare container, a
    # service manager, whose log collector reads UTF-8) keeps the UTF-8 Python chose.
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(name, "")
        if name == "LC_CTYPE" and value in _COERCED_CTYPES:  # Python's, not theirs: one they set turns UTF-8 mode off
            continue
        if value:
            return value in ("C", "POSIX")
    return False


def _finite(data: Any) -> Any:
    """`data` with every infinite or NaN number (an overflowing sum, absurd input) as null: JSON has no Infinity."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


# Bidirectional overrides reorder what a terminal shows; like control characters, they never come from us.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def escape_controls(text: str, keep: str = "") -> str:
    """`text` with control characters (but those in `keep`) and bidi overrides escaped: a path or value holding
    an escape sequence or a carriage return must not colour, move or overwrite what the terminal shows."""
    if all(ch.isprintable() or ch in keep for ch in text):
        return text
    return "".join(ch if (ch in keep or (unicodedata.category(ch) != "Cc" and ch not in _BIDI))
                   else ch.encode("unicode_escape").decode("ascii") for ch in text)


_progress_lock = threading.Lock()


def progress(message: str) -> None:
    """Progress on long steps goes to stderr so --json output stays parseable; one line each. Stderr that cannot be
    written (its reader left: `2>&1 | head`) must not stop a step half-way, a promotion between its pin and its
    smoke test: the rest of the progress is dropped and the work goes on."""
    line = encodable(f"… {escape_controls(message)}", sys.stderr) + "\n"
    try:
        # One write under a lock: print() writes the text and the newline apart, so two stacks starting at once ran
        # their lines together.
        with _progress_lock:
            sys.stderr.write(line)
            sys.stderr.flush()
    except OSError:
        to_devnull(sys.stderr)


def _cell(value: Any) -> str:
    return "-" if value is None else escape_controls(str(value))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(_cell(r.get(c, ""))) for r in rows]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(_cell(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)
