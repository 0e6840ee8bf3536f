"""The Worker-in-Pyodide test uses tests/service's kit: its autouse `log_lines` fixture checks every
line handed to it against docs/logging-schema-v1.json (and for secrets) when the test ends."""

import worker_upload  # noqa: F401 - puts tests/service on sys.path
from service_testkit import log_lines

__all__ = ["log_lines"]
