"""What the custom-node tests build offline: a git repository for a node, and a one-module wheel for its requirement."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    """`git -C repo args`, as a throwaway identity that signs nothing; its stdout."""
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, check=True).stdout


def wheel(where: Path, package: str, version: str, module: bytes) -> Path:
    """A wheel of `package` (one module, `module` its body), built by hand: pip installs it offline, with no build
    step."""
    where.mkdir(parents=True, exist_ok=True)
    name = package.replace("-", "_")
    path = where / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": module,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},"
                     f"{len(body)}\n" for name, body in files.items())
    with zipfile.ZipFile(path, "w") as archive:
        for entry, body in files.items():
            archive.writestr(entry, body)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path
