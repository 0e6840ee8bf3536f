"""Hostile mutations of a valid document, for the review-24 sweeps of the config loaders (tests/test_review24_fuzz_*):
any node replaced by another type, a key deleted or added, YAML only a hand-edited file holds (tags, anchors, alias
and merge bombs, numbers too large to print, deep nesting, a key given twice), and bytes that are not UTF-8 text.
Every size is bounded, so a sweep cannot hang on its own input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

KeyPath = tuple[Any, ...]
_SNIPPET = "review24-snippet-{}-end"


def _laughs(levels: int = 9, width: int = 10) -> str:
    """The billion laughs: nine anchors, each ten aliases of the one before (10**9 leaves if walked)."""
    parts = [f"&l0 [{', '.join(['lol'] * width)}]"]
    parts += [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


def _merges(levels: int = 6, width: int = 10) -> str:
    """`<<` merge keys, each level merging the one before `width` times over."""
    parts = [f"&m0 {{{', '.join(f'k{i}: {i}' for i in range(width))}}}"]
    parts += [f"&m{i} {{<<: [{', '.join([f'*m{i - 1}'] * width)}], x{i}: 1}}" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


# Values a hand-edited YAML file can hold that no dumped Python value gives: each replaces one node as raw text.
RAW_YAML = (
    "0x" + "f" * 4_000,        # an integer too large to print (hex escapes Python's 4,300-digit limit on reading)
    "-0b" + "1" * 16_000,
    "0" + "7" * 6_000,         # octal, in YAML 1.2's form
    "9" * 5_000,               # a decimal Python refuses to read
    "1e999", "-.inf", ".nan", "1_000", "0x_1", "+0",
    "!!int ''", "!!bool maybe", "!!timestamp soon", "!!timestamp 2001-12-14", "!!float x", "!!null x",
    "!!binary aGVsbG8=", "!!binary '!!'", "!!set {a: null}", "!!omap [{a: 1}, {a: 2}]", "!!pairs [{a: 1}]",
    "!!python/object/apply:os.getcwd []", "!local x", "!!str", "!!map [1]", "!!seq {a: 1}",
    "&r [*r]", "&m {k: *m}", "*nowhere", _laughs(), _merges(),
    "{[a, b]: 1}", "{{a: 1}: 2}", "{a: 1, a: 2}", "{1: a, 1.0: b}", "[a, b", "{a: [}",
    '"\\ud800"', '"\\x1b[2J"', '"\\u202e"', '"\\0"', '"a\\nb"', '"\\t"', '"\\u2028"', "'" + "x" * 5_000 + "'",
    "yes", "off", "1:30", "2025-01-01", "~", "null", "''", "-", "? a", "|\n  text",
)
# Python values any loader may be handed: every type, the extremes of each.
_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([-1, 0, 1, 2**31, 2**63, -(2**63) - 1, 2**64 + 1, 10**4_000, -(10**300)]),
    st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 5e-324]),
    st.text(max_size=24),
    st.sampled_from(["", " ", "x" * 5_000, "\x1b[31m", "\u202e", "a\nb", "\x00", "\ufeff", "é" * 300, "..", "/",
                     "<PLACEHOLDER>", "https://user:pass@example.com/x?y#z", "１２３"]),
)
HOSTILE = st.one_of(
    _SCALARS, _SCALARS,
    st.lists(_SCALARS, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-3, 3)), _SCALARS, max_size=4),
)
JSON_HOSTILE = st.one_of(  # as a JSON parser gives it: every key a string
    _SCALARS, _SCALARS,
    st.lists(_SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=8), _SCALARS, max_size=4),
)
# Bytes that break the text itself: not UTF-8, control characters YAML refuses, a tab in the indentation, a BOM.
_BYTES = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\x1b", b"\x7f", b"\t", b"\xef\xbb\xbf", b"\r", b"\x85",
          b"\xe2\x80\xa8", b"\n  ", b"\n- ", b": ", b"#", b"&a ", b"*a ", b"!", b"%YAML 1.1\n---\n", b"---\n", b"...\n")


@dataclass(frozen=True)
class Step:
    """One mutation: `op` (replace, raw, nest, delete, add: a key added to the mapping at `path`) at `path`."""

    op: str
    path: KeyPath
    value: str

    def named_at(self) -> KeyPath:
        """The path of the mapping or list an error about this step names: the node's parent (a replaced value may
        break a rule between it and its siblings), or for `add` the mapping given the unknown key."""
        return self.path if self.op == "add" else self.path[:-1]


def paths(node: Any, here: KeyPath = ()) -> list[KeyPath]:
    """Every node's path (mapping keys and list indexes) below `node`, `node` itself first."""
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += paths(value, (*here, i))
    return found


def _at(doc: Any, path: KeyPath) -> tuple[Any, Any]:
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    return parent, path[-1]


@st.composite
def mutated(draw: st.DrawFn, doc: Any, focus: KeyPath = (), json_only: bool = False) -> tuple[Any, list[Step]]:
    """`doc` with one to three of its nodes replaced, deleted, or given an unknown key; mostly below `focus`. Returns
    the document and what was done, step by step. `json_only`: only values JSON can carry (a job's input
    as RunPod hands it over), with nesting as deep as a JSON parser takes; otherwise raw YAML placeholders too."""
    doc, done = copy.deepcopy(doc), []
    hostile = JSON_HOSTILE if json_only else HOSTILE
    for _ in range(draw(st.integers(1, 3))):
        everywhere = paths(doc)
        inside = [p for p in everywhere if p[:len(focus)] == focus and len(p) > len(focus)]
        pool = inside if inside and draw(st.integers(0, 9)) else everywhere
        # as often at each depth: the few top-level fields of a report with hundreds of leaves are hit too
        depth = draw(st.integers(min(map(len, pool)), max(map(len, pool))))
        path = draw(st.sampled_from([p for p in pool if len(p) == depth] or pool))
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "nest"]
                                  + ([] if json_only else ["raw", "raw"])))
        if op == "nest":
            depth = draw(st.integers(1, 900 if json_only else 40))  # YAML's deep nesting comes as raw text
            value: Any = draw(hostile)
            # one draw for every level's wrapper (bit i: a list or a mapping), not one strategy and draw per level:
            # up to 900 draws a nest was most of the report sweep's time
            # (fixed-size bytes, not st.integers: hypothesis favours small integers, which left every level above
            # the 64th a list)
            wrappers = int.from_bytes(draw(st.binary(min_size=(depth + 7) // 8, max_size=(depth + 7) // 8)), "little")
            for level in range(depth):
                value = {"k": value} if wrappers >> level & 1 else [value]
        elif op == "raw":
            value = _SNIPPET.format(draw(st.integers(0, len(RAW_YAML) + 1)))
        else:
            value = draw(hostile)
        if op == "add":
            target = doc
            for part in path:
                target = target[part]
            if isinstance(target, dict):
                keys = ["", "x" * 2_000, "\x1b"] + ([] if json_only else [7, True, None])
                target[draw(st.one_of(st.text(max_size=12), st.sampled_from(keys)))] = value
                done.append(Step("add", path, _short(value)))
                continue
            op = "replace"
        if not path:
            doc = value
        elif op == "delete":
            parent, last = _at(doc, path)
            del parent[last]
        else:
            parent, last = _at(doc, path)
            parent[last] = value
        done.append(Step(op, path, "" if op == "delete" else _short(value)))
    return doc, done


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 1_000 else "<huge int>"
    return text if len(text) < 120 else text[:120] + "..."


def as_yaml(draw: st.DrawFn, doc: Any) -> tuple[bytes, str]:
    """`doc` as a YAML file: raw placeholders spliced in, then perhaps a key line given twice, bytes inserted, or the
    text cut short (the edit made, "none" if none, is returned beside the bytes)."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans()), width=10_000)
    for i, raw in enumerate((*RAW_YAML, "[" * 3_000 + "]" * 3_000, "{a: " * 600 + "1" + "}" * 600)):
        text = text.replace(_SNIPPET.format(i), raw)
    data = text.encode("utf-8", "surrogatepass")
    edit = draw(st.sampled_from(["none", "none", "none", "twice", "bytes", "cut"]))
    lines = data.split(b"\n")
    if edit == "twice":  # a key given twice, or a list item repeated
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        data = b"\n".join(lines)
    return _damaged(draw, data, edit), edit


def _damaged(draw: st.DrawFn, data: bytes, edit: str) -> bytes:
    """`data` with one byte sequence of _BYTES inserted (`bytes`), cut short (`cut`), or as it is."""
    if edit == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from(_BYTES)) + data[at:]
    if edit == "cut":
        return data[:draw(st.integers(0, len(data)))]
    return data


def as_json(draw: st.DrawFn, doc: Any) -> tuple[bytes, str]:
    """`doc` as a JSON file (NaN and Infinity as Python writes them), sometimes with bytes inserted or cut short."""
    try:
        text = json.dumps(doc)
    except (ValueError, RecursionError):
        text = "[" * 5_000  # a document Python cannot even write as JSON: a reader meets this instead
    data = text.encode("utf-8", "surrogatepass")
    edit = draw(st.sampled_from(["none", "none", "none", "bytes", "cut"]))
    return _damaged(draw, data, edit), edit


def outcome(call: Callable[[], Any], allowed: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
    """What `call` returns, or the allowed error it raises; any other exception fails the sweep with its traceback."""
    try:
        return call()
    except allowed as exc:
        return exc
