"""`python -m goldgate ...`: the `goldgate` command (goldgate.cli), for an environment without its console script."""

from __future__ import annotations

import sys

from goldgate.cli import main

if __name__ == "__main__":
    sys.exit(main())
