"""Bake one model into the worker image at build time: download it, check its sha256, make it readable.

The Dockerfile runs `python fetch_model.py URL SHA256|- SIZE|- DEST` once per models.yaml entry, each in a layer of
its own (`URL SHA256|- DEST`, the shape before SIZE, is still baked, with a warning that nothing bounds it). It does
what BuildKit's `ADD --checksum --chmod` would, under the classic builder goldgate drives.
Stdlib only: the base image has python, not necessarily curl or wget.

SIZE (models.yaml's `size`, in bytes) bounds the download: an answer that announces another length is refused before
its body is read, and the body is read no further than one byte past SIZE, so a wrong file fails at once rather than
after tens of GB, and a server that never stops sending cannot fill the builder's disk. A file that ends short of
SIZE fails too. The sha256 check still follows.

A failed attempt that may pass (a 5xx, a 429, a broken or cut-short download) is retried after 1, 2 and 4 s, or
after the 429's Retry-After when that is longer. A retry resumes where the cut-short attempt ended (an HTTP range
request, `If-Range` the first answer's strong ETag): a model of tens of GB cut near its end is not downloaded from
its first byte again. A server that answers the range with the whole file, or another range, is read from the start.
GOLDGATE_TEST_FETCH_RETRY_DELAYS_S (comma-separated seconds, e.g. `0,0,0`: one retry per delay) replaces those
delays; only tests set it, so they need not wait out real back-off. The Dockerfile never sets it, and a build's RUN
does not see the builder's environment.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

RETRY_DELAYS_S: tuple[float, ...] = (1, 2, 4)
TEST_RETRY_DELAYS_ENV = "GOLDGATE_TEST_FETCH_RETRY_DELAYS_S"
MAX_RETRY_AFTER_S = 300  # a 429's Retry-After is waited out up to this; a longer one is a build to run later
READ_TIMEOUT_S = 60
CHUNK = 8 * 1024 * 1024
# The layer's bytes must not depend on when or where it was built: a rebuild on a fresh builder then gives
# the same layer digest, which the registry already holds, so the model is not pushed again.
LAYER_MTIME = 0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SIZE = re.compile(r"^[0-9]{1,20}$")


class FetchFailed(Exception):
    """The model could not be baked; nothing was left at its destination."""


class _Transient(Exception):
    """A failure worth another attempt (a 5xx, a 429, a broken connection), after `retry_after` s if the server
    said so."""

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _StayOnHttps(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, except one that leaves https: the LoRA is baked unpinned, so whoever could answer a
    downgraded plain-http request (anyone on the builder's path) would choose the bytes the image ships."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(req.full_url).scheme == "https" and urllib.parse.urlsplit(newurl).scheme != "https":
            fp.close()
            raise FetchFailed(f"GET {req.full_url} answered {code} {msg} to {newurl}: a download that starts on "
                              "https never leaves it; check source_url in models.yaml")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_StayOnHttps)


def fetch(url: str, sha256: str | None, dest: Path, retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
          size: int | None = None) -> str:
    """Download `url` to `dest` (mode 644), refusing content whose sha256 is not `sha256` or whose length is not
    `size` (read no further than one byte past it); a transient failure is retried once after each of
    `retry_delays_s`. Returns the sha256."""
    anchor = _nearest_existing(dest.parent)
    stat = anchor.stat()
    anchor_times = (stat.st_atime_ns, stat.st_mtime_ns)
    created = [d for d in (dest.parent, *dest.parent.parents) if d != anchor and anchor in d.parents]
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download_with_retries(url, out, retry_delays_s, _Expected(dest, size))
        if sha256 is not None and digest != sha256:
            raise FetchFailed(f"{url} has sha256 {digest}, models.yaml pins {sha256}: the source changed or the pin "
                              f"is wrong; nothing was written to {dest}")
        os.chmod(tmp, 0o644)  # mkstemp makes it 600: the non-root worker user must read the model
        os.utime(tmp, (LAYER_MTIME, LAYER_MTIME))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        for directory in created:
            if directory.exists():
                os.utime(directory, (LAYER_MTIME, LAYER_MTIME))
        os.utime(anchor, ns=anchor_times)
    return digest


def _nearest_existing(directory: Path) -> Path:
    while not directory.exists():
        directory = directory.parent
    return directory


class _Expected:
    """The model's file (its name is models.yaml's `file`) and the length models.yaml gives it (None: unknown)."""

    def __init__(self, dest: Path, size: int | None) -> None:
        self.dest, self.size = dest, size

    def wrong_size(self, url: str, seen: str) -> FetchFailed:
        return FetchFailed(f"{self.dest.name}: {url} {seen}, models.yaml gives it {self.size} bytes: the source "
                           f"serves another file than the one pinned; check source_url and size in models.yaml; "
                           f"nothing was written to {self.dest}")


class _Progress:
    """What the attempts so far have written: its byte count and running sha256, and the validator (a strong ETag)
    that lets a retry ask for the rest only if the file is still the one those bytes came from."""

    def __init__(self, out: BinaryIO, expected: _Expected) -> None:
        self.out = out
        self.expected = expected
        self.restart()

    def restart(self) -> None:
        self.out.seek(0)
        self.out.truncate()
        self.digest = hashlib.sha256()
        self.got = 0
        self.validator: str | None = None

    def add(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.out.write(chunk)
        self.got += len(chunk)


def _download_with_retries(url: str, out: BinaryIO, retry_delays_s: tuple[float, ...], expected: _Expected) -> str:
    progress = _Progress(out, expected)
    for delay in retry_delays_s:
        try:
            return _download(url, progress)
        except _Transient as exc:
            delay = max(delay, exc.retry_after)  # a rate-limited host refuses a retry that comes sooner
            print(f"fetch_model: {exc}; retrying in {delay:g} s", file=sys.stderr, flush=True)
            time.sleep(delay)
    try:
        return _download(url, progress)
    except _Transient as exc:
        raise FetchFailed(f"{exc} (gave up after {len(retry_delays_s) + 1} attempts)") from None


_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


def _download(url: str, progress: _Progress) -> str:
    request = urllib.request.Request(url)
    resuming = progress.got > 0 and progress.validator is not None
    if resuming:
        request.add_header("Range", f"bytes={progress.got}-")
        request.add_header("If-Range", str(progress.validator))
    else:
        progress.restart()  # a retry without a validator starts the file over
    try:
        with _OPENER.open(request, timeout=READ_TIMEOUT_S) as resp:
            announced = resp.length  # Content-Length, None when the server sent none
            if resuming and resp.status == 206:
                match = _CONTENT_RANGE.match(resp.headers.get("Content-Range") or "")
                if not match or int(match.group(1)) != progress.got:
                    asked = progress.got
                    progress.restart()
                    raise _Transient(f"GET {url} answered the range from byte {asked} with "
                                     f"{resp.headers.get('Content-Range')!r}; starting over")
                print(f"fetch_model: resuming {url} at byte {progress.got}", file=sys.stderr, flush=True)
                if announced is not None:
                    announced += progress.got
            else:
                progress.restart()  # a 200: the whole file (it changed, or the server takes no ranges)
                etag = resp.headers.get("ETag") or ""
                progress.validator = etag if etag.startswith('"') else None  # If-Range takes no weak ETag
            size = progress.expected.size
            if size is not None and announced is not None and announced != size:
                # Refused before its body is read: a wrong file of tens of GB is not downloaded to be refused.
                raise progress.expected.wrong_size(url, f"announces {announced} bytes (Content-Length)")
            # Never more than one byte past the size: enough to know the file is longer, however long it goes on.
            while chunk := resp.read(CHUNK if size is None else min(CHUNK, size + 1 - progress.got)):
                progress.add(chunk)
                if size is not None and progress.got > size:
                    raise progress.expected.wrong_size(url, f"sent more than that (stopped at {progress.got} bytes)")
    except urllib.error.HTTPError as exc:
        message = f"GET {url} answered {exc.code} {exc.reason}"
        if resuming and exc.code == 416:  # a range it cannot serve: the file changed under it; start over
            asked = progress.got
            progress.restart()
            raise _Transient(f"{message} to the range from byte {asked}; starting over") from None
        if exc.code >= 500 or exc.code == 429:
            raise _Transient(message, _retry_after(exc.headers.get("Retry-After"))) from None
        if exc.code in (401, 403):
            raise FetchFailed(f"{message}: the source wants credentials (on Hugging Face: a gated or private "
                              "repository, or one that does not exist); check source_url in models.yaml. This build "
                              "sends no token, and a token given with --build-arg is kept in the image's history "
                              "(`docker history --no-trunc`) for anyone who pulls it: put the file where the build "
                              "reads it without one (a mirror on the builder's network; the sha256 pin still checks "
                              "it)") from None
        raise FetchFailed(f"{message}; check source_url in models.yaml") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise _Transient(f"GET {url} failed: {getattr(exc, 'reason', None) or exc}") from None
    # read(amt) ends quietly at a connection closed early: only the count shows the body was cut short.
    if announced is not None and progress.got != announced:
        raise _Transient(f"GET {url} ended after {progress.got} of the {announced} bytes its Content-Length "
                         "announced")
    size = progress.expected.size
    if size is not None and progress.got < size:
        if announced is None:   # no length announced: a connection closed early looks the same as the file's end
            raise _Transient(f"GET {url} ended after {progress.got} of the {size} bytes models.yaml gives "
                             f"{progress.expected.dest.name}")
        raise progress.expected.wrong_size(url, f"is {progress.got} bytes long")
    return progress.digest.hexdigest()


def _retry_after(value: str | None) -> int:
    """Retry-After in seconds (the HTTP-date form counts as absent), capped at MAX_RETRY_AFTER_S."""
    value = (value or "").strip()
    return min(int(value), MAX_RETRY_AFTER_S) if value.isdecimal() else 0


def _retry_delays(value: str | None) -> tuple[float, ...] | None:
    """The delays TEST_RETRY_DELAYS_ENV sets (RETRY_DELAYS_S when unset or empty); None when it is malformed."""
    if not (value or "").strip():
        return RETRY_DELAYS_S
    try:
        delays = tuple(float(part) for part in value.split(","))
    except ValueError:
        return None
    return delays if all(math.isfinite(d) and d >= 0 for d in delays) else None


def main(argv: list[str]) -> int:
    retry_delays_s = _retry_delays(os.environ.get(TEST_RETRY_DELAYS_ENV))
    if retry_delays_s is None:
        print(f"fetch_model: {TEST_RETRY_DELAYS_ENV}={os.environ[TEST_RETRY_DELAYS_ENV][:40]!r} is not a "
              "comma-separated list of seconds >= 0 (e.g. 0,0,0); unset it for the built-in delays",
              file=sys.stderr)
        return 2
    unsized = len(argv) == 3   # the line shape before SIZE: still baked, and said to be unbounded
    if unsized:
        argv = [argv[0], argv[1], "-", argv[2]]
    if (len(argv) != 4 or not (argv[1] == "-" or _SHA256.match(argv[1]))
            or not (argv[2] == "-" or _SIZE.match(argv[2]))):
        print("usage: fetch_model.py URL SHA256|- SIZE|- DEST (models.yaml's source_url, sha256 and size, and the "
              "file to write; SHA256: 64 lowercase hex digits; SIZE: bytes; '-' leaves one unchecked)",
              file=sys.stderr)
        return 2
    url, pin, dest = argv[0], (None if argv[1] == "-" else argv[1]), Path(argv[3])
    size = None if argv[2] == "-" else int(argv[2])
    if unsized:
        print(f"fetch_model: warning: no SIZE given for {dest}: its download is not bounded (a wrong file is read "
              "whole before its sha256 fails it; one that never ends fills the disk); give models.yaml's size: "
              "fetch_model.py URL SHA256|- SIZE|- DEST", file=sys.stderr, flush=True)
    try:
        digest = fetch(url, pin, dest, retry_delays_s, size)
    except FetchFailed as exc:
        print(f"fetch_model: {exc}", file=sys.stderr)
        return 1
    if pin is None:
        print(f"fetch_model: UNPINNED {dest} baked unverified, sha256 {digest}, {dest.stat().st_size} bytes: check it "
              "against its source and pin both in models.yaml and the Dockerfile", file=sys.stderr)
    else:
        print(f"fetch_model: {dest} sha256 {digest} verified")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
