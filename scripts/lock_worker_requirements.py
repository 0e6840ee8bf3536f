"""Hash-locks images/worker/requirements.txt: under each pin, the sha256 of every file the index holds for
that version, so the image's `pip install --require-hashes` refuses a re-uploaded or tampered file.

Run it with a Python that has pip-tools (not a goldgate dependency: a throwaway venv does), from anywhere:
    python3 -m venv /tmp/lock && /tmp/lock/bin/pip install pip-tools==7.6.2
    /tmp/lock/bin/python scripts/lock_worker_requirements.py          # rewrite the hash lines
    /tmp/lock/bin/python scripts/lock_worker_requirements.py --check  # exit 1 if they differ from the index
Arguments it does not know go to pip-compile (e.g. --index-url for a mirror). The versions and comments stay
the file's own: pip-compile resolves the pins together and lists every file of each version (wheels for all
platforms and Pythons, and the sdist), so a dependency left unpinned fails here, named, not in a Docker build.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "images" / "worker" / "requirements.txt"
PIP_TOOLS = "pip-tools==7.6.2"
# `name==version`, followed by ` \` when hash lines come under it.
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)==([0-9][0-9A-Za-z.+!-]*)( \\)?")
HASH = re.compile(r"\s+--hash=(sha256:[0-9a-f]{64})( \\)?")


class LockFailed(Exception):
    """Why the requirements could not be hash-locked, in words the person running the script can act on."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str

    @property
    def key(self) -> str:
        return re.sub(r"[-_.]+", "-", self.name).lower()   # PEP 503, as pip-compile writes names


def read(text: str) -> list[str | Pin]:
    """The file's comments and blank lines (kept as they are) and its pins, in order; hash lines dropped."""
    entries: list[str | Pin] = []
    for number, line in enumerate(text.splitlines(), 1):
        if HASH.fullmatch(line):
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            entries.append(line)
        elif match := PIN.fullmatch(line):
            entries.append(Pin(match[1], match[2]))
        else:
            raise LockFailed(f"line {number}: {line!r} is neither a comment, a `name==version` pin "
                             "nor a hash")
    return entries


def compile_hashes(pins: list[Pin], pip_compile_args: list[str]) -> dict[str, list[str]]:
    """{pin key: its hashes} as pip-compile --generate-hashes finds them on the configured index."""
    if importlib.util.find_spec("piptools") is None:
        raise LockFailed(f"pip-tools is not installed for {sys.executable}; in a throwaway venv: "
                         f"python3 -m venv /tmp/lock && /tmp/lock/bin/pip install {PIP_TOOLS}, then run "
                         f"this script with /tmp/lock/bin/python")
    with tempfile.TemporaryDirectory(prefix="worker-lock-") as tmp:
        wanted, locked = Path(tmp) / "worker.in", Path(tmp) / "worker.txt"
        wanted.write_text("".join(f"{pin.name}=={pin.version}\n" for pin in pins))
        command = [sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes",
                   "--allow-unsafe", "--strip-extras", "--no-header", "--no-annotate", "--no-emit-index-url",
                   "--no-emit-find-links", "--no-emit-trusted-host", *pip_compile_args,
                   "--output-file", str(locked), str(wanted)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LockFailed(f"pip-compile failed (exit {done.returncode}):\n{done.stderr.strip()}")
        found: dict[str, tuple[str, list[str]]] = {}
        current = ""
        for line in locked.read_text().splitlines():
            if match := PIN.fullmatch(line):
                current = Pin(match[1], match[2]).key
                found[current] = (match[2], [])
            elif match := HASH.fullmatch(line):
                found[current][1].append(match[1])
    by_key = {pin.key: pin for pin in pins}
    missing = sorted(f"{key}=={version}" for key, (version, _) in found.items() if key not in by_key)
    if missing:
        raise LockFailed("the pins need these too; pin each (with a comment on who needs it) and run "
                         "again: " + ", ".join(missing))
    for key, (version, hashes) in found.items():
        if version != by_key[key].version or not hashes:
            raise LockFailed(f"pip-compile locked {key}=={version} with {len(hashes)} hashes, "
                             f"not {by_key[key].version} with hashes")
    return {key: hashes for key, (_, hashes) in found.items()}


def write(entries: list[str | Pin], hashes: dict[str, list[str]]) -> str:
    lines: list[str] = []
    for entry in entries:
        if isinstance(entry, str):
            lines.append(entry)
            continue
        found = hashes.get(entry.key)
        if not found:  # pip-compile left it out (a marker for another Python, say): not written unhashed
            raise LockFailed(f"pip-compile listed no hashes for {entry.name}=={entry.version}")
        lines.append(f"{entry.name}=={entry.version} \\")
        lines.extend(f"    --hash={h}" + (" \\" if i < len(found) - 1 else "") for i, h in enumerate(found))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])  # the first paragraph, whole
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the hashes differ")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    args, pip_compile_args = parser.parse_known_args(argv)
    try:
        before = args.requirements.read_text()
        entries = read(before)
        after = write(entries, compile_hashes([e for e in entries if isinstance(e, Pin)], pip_compile_args))
    except LockFailed as exc:
        print(f"{args.requirements}: {exc}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as exc:  # no such file, a directory, not UTF-8
        print(f"{args.requirements}: cannot read it: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if after == before:
            print(f"{args.requirements}: every pin carries the hashes the index lists for it")
            return 0
        sys.stdout.writelines(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                                   str(args.requirements), "what the index lists now"))
        return 1
    args.requirements.write_text(after)
    pins = sum(isinstance(e, Pin) for e in entries)
    print(f"{args.requirements}: {pins} pins hash-locked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
