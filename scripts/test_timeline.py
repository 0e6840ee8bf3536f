"""Which test files bound the suite's wall time: read the lines GG_TEST_TIMELINE=<file> made tests/conftest.py write,
and print each worker's busy time, the suite's span, and the files that ended last with their span on their worker.

    GG_TEST_TIMELINE=/tmp/timeline.jsonl .venv/bin/pytest -q
    .venv/bin/python scripts/test_timeline.py /tmp/timeline.jsonl [--last 15]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("timeline", type=Path, help="the file GG_TEST_TIMELINE named")
    parser.add_argument("--last", type=int, default=15, help="how many of the last-ending files to show")
    args = parser.parse_args(argv)
    try:
        lines = [json.loads(line) for line in args.timeline.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        print(f"test_timeline: cannot read {args.timeline}: {exc}", file=sys.stderr)
        return 1
    if not lines:
        print(f"test_timeline: {args.timeline} holds no test", file=sys.stderr)
        return 1
    keys = {"worker": str, "file": str, "start": (int, float), "end": (int, float)}
    bad = next((n for n, t in enumerate(lines, 1) if not isinstance(t, dict)
                or not all(isinstance(t.get(k), kind) for k, kind in keys.items())), None)
    if bad is not None:
        print(f"test_timeline: line {bad} of {args.timeline} is no test record (worker, file, start, end)",
              file=sys.stderr)
        return 1
    t0 = min(t["start"] for t in lines)
    files: dict[tuple[str, str], list[float]] = defaultdict(lambda: [float("inf"), 0.0, 0.0])
    busy: dict[str, float] = defaultdict(float)
    for t in lines:
        span = files[(t["worker"], t["file"])]
        span[0], span[1] = min(span[0], t["start"]), max(span[1], t["end"])
        span[2] += t["end"] - t["start"]
        busy[t["worker"]] += t["end"] - t["start"]
    end = max(t["end"] for t in lines)
    print(f"tests {len(lines)}, span {end - t0:.0f} s; busy per worker: "
          + ", ".join(f"{w} {s:.0f} s" for w, s in sorted(busy.items())))
    print(f"the {args.last} files that ended last (start and end from the first test's start, time in tests):")
    for (worker, file), (start, stop, spent) in sorted(files.items(), key=lambda kv: kv[1][1])[-args.last:]:
        print(f"  {worker:>5} {start - t0:7.0f} {stop - t0:7.0f} {spent:7.1f}  {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
