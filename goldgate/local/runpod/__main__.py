"""`python -m goldgate.local.runpod --config FILE [--ready-file FILE]`: run the emulator until SIGTERM/SIGINT.

Once listening it writes {"base_url", "api_base", "endpoint_base", "pid"} to the ready file (atomically)
and logs `runpod_emulator.ready` on stdout. The config file is JSON (see `EmulatorConfig`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from goldgate.errors import GoldgateError
from goldgate.local.runpod.config import load_config
from goldgate.local.runpod.emulator import RunPodEmulator
from goldgate.local.runpod.eventlog import EventLog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goldgate.local.runpod", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="emulator config (JSON)")
    parser.add_argument("--ready-file", type=Path, help="where to write the base URLs once listening")
    args = parser.parse_args(argv)
    out = EventLog(None, None)
    try:
        config = load_config(args.config)
        emulator = RunPodEmulator(config).start()
    except (GoldgateError, OSError) as exc:
        out.error("runpod_emulator.start_failed", error=str(exc))
        print(f"runpod emulator: error: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    ready = {"base_url": emulator.base_url, "api_base": emulator.api_base,
             "endpoint_base": emulator.endpoint_base, "pid": os.getpid()}
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        os.replace(tmp, args.ready_file)
    out.info("runpod_emulator.ready", **ready)
    done.wait()
    emulator.stop()
    out.info("runpod_emulator.exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
