"""What is at a path that should be a file, in words an error message can give (stdlib only): the migration
runner refuses a non-file migration with them, and goldgate.files uses the same words (goldgate imports service,
never the other way)."""

from __future__ import annotations

import stat

__all__ = ["file_kind"]


def file_kind(mode: int) -> str:
    """What an `st_mode` that is not a regular file's is: "a directory", "a named pipe (FIFO)", ..."""
    return ("a directory" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
            "not a regular file")
