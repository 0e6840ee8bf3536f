"""A local stack's named client tokens: one file per client, `secrets/clients/<name>` (0600 in a 0700 directory),
holding the token the client sends. The stack's service is given only each client's sha256 (service/clients.py);
`goldgate client add|revoke|list` keep the files, and `goldgate reload` applies them as it applies a rotated API
token, without stopping a job (so does a deploy, or the next `up` of a stopped stack; docs/RUNBOOK.md, "Add or revoke
a client").
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from goldgate.bounded_http import bearer_token
from goldgate.errors import StateError
from goldgate.files import NotARegularFile, open_regular
from goldgate.local.state import API_TOKEN_PREVIOUS, MAX_SECRET_BYTES, WEBHOOK_SECRET_PREVIOUS, StackDir
from service.clients import MAX_CLIENTS, NAME, NAME_RULE, TOKEN_MIN_CHARS, token_hash

CLIENTS_DIR = "clients"


@dataclass(frozen=True)
class ClientFile:
    """A client's file as `goldgate client list` shows it: its name and when it was written (never its token)."""

    name: str
    written_at_s: float


def clients_dir(d: StackDir) -> Path:
    return d.secrets_dir / CLIENTS_DIR


def check_name(name: str) -> str:
    """`name` when it is a client name; else a StateError saying what one is (the value shown cut and escaped)."""
    if not NAME.match(name):
        raise StateError(f"{name[:40]!r} is not a client name ({NAME_RULE}), e.g. web-frontend")
    return name


def _directory(d: StackDir) -> Path | None:
    """The clients directory, None while there is none; refused when it is not a directory of its own: a symbolic
    link would have goldgate read, and revoke remove, files wherever it points."""
    directory = clients_dir(d)
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"{directory} is not a directory (a symbolic link or a file): goldgate keeps one file per "
                         f"client there; move it away and add the clients again (`goldgate client add <name> --stack "
                         f"{d.stack}`)")
    return directory


def _entries(d: StackDir, at_most: bool = True) -> list[str]:
    """The names in the clients directory, each checked as a client name (a stray file is refused by its path), and
    no more than MAX_CLIENTS of them unless `at_most` is False: `list` shows every one, so that the operator can pick
    those to revoke when two adds at once made one too many."""
    directory = _directory(d)
    if directory is None:
        return []
    names = sorted(os.listdir(directory))
    for name in names:
        if not NAME.match(name):
            raise StateError(f"{directory / name} is not a client's file ({name[:40]!r} is no client name: "
                             f"{NAME_RULE}): move it out of {directory}")
    if at_most and len(names) > MAX_CLIENTS:
        raise StateError(f"{directory} holds {len(names)} clients; a stack takes at most {MAX_CLIENTS}: revoke "
                         f"those no longer used (`goldgate client revoke <name> --stack {d.stack}`)")
    return names


def _read_token(d: StackDir, name: str) -> str:
    """A client's token from its file, opened without following a symbolic link and only if it is a regular file."""
    path = clients_dir(d) / name
    fix = f"revoke it (`goldgate client revoke {name} --stack {d.stack}`) and add it again"
    try:
        fd = open_regular(path, os.O_RDONLY, follow_symlinks=False)
    except NotARegularFile as exc:
        raise StateError(f"{path} is {exc.kind}, not a client's token file: {fix}") from None
    with os.fdopen(fd, "rb") as f:
        # Copied in by hand, often with the umask's 0644: kept as private as the files goldgate writes.
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) != 0o600:
            with contextlib.suppress(PermissionError):  # another user's file: read as it is, as any secret
                os.fchmod(f.fileno(), 0o600)
        raw = f.read(MAX_SECRET_BYTES + 1)
    try:
        token = bearer_token(raw.decode("utf-8")) if len(raw) <= MAX_SECRET_BYTES else None
    except UnicodeDecodeError:
        token = None
    if not token or len(token) < TOKEN_MIN_CHARS:  # never the value, nor its length
        raise StateError(f"{path} holds no client token of at least {TOKEN_MIN_CHARS} characters on one line: {fix}")
    return token


def client_tokens(d: StackDir) -> dict[str, str]:
    """Each client's token, refused by its file's name (never its value) wherever the service must not take it: not
    a regular file (a symbolic link too), too short, two clients' the same, or one equal to the API token or a
    webhook secret (a client would then hold the operator's token, or could sign RunPod's outcomes)."""
    names = _entries(d)
    if names:  # as `goldgate client add` makes it, whatever made it (another user's: left as it is)
        with contextlib.suppress(PermissionError):
            os.chmod(clients_dir(d), 0o700)
    tokens = {name: _read_token(d, name) for name in names}
    operator = {"secrets/api_token": d.secret("api_token"), "secrets/webhook_secret": d.secret("webhook_secret"),
                f"secrets/{API_TOKEN_PREVIOUS}": d.optional_secret(API_TOKEN_PREVIOUS) or "",
                f"secrets/{WEBHOOK_SECRET_PREVIOUS}": d.optional_secret(WEBHOOK_SECRET_PREVIOUS) or ""}
    seen: dict[str, str] = {}
    for name, token in tokens.items():
        path = clients_dir(d) / name
        for other, value in operator.items():
            if value and hmac.compare_digest(token.encode(), value.encode()):
                raise StateError(f"{path} holds the same value as {other}, which the service refuses: revoke the "
                                 f"client and add it again (`goldgate client revoke {name} --stack {d.stack}`)")
        digest = token_hash(token)
        if digest in seen:
            raise StateError(f"{path} holds the same token as {clients_dir(d) / seen[digest]}: revoke one and add it "
                             f"again (`goldgate client revoke {name} --stack {d.stack}`)")
        seen[digest] = name
    return tokens


def client_hashes(d: StackDir) -> dict[str, str]:
    """What the stack's service config carries of its clients: each name -> the sha256 (hex) of its token."""
    return {name: token_hash(token) for name, token in client_tokens(d).items()}


def add_client(d: StackDir, name: str) -> str:
    """Make `name`'s token, write it (0600, created only where no file is: an existing client is refused, never
    replaced) and return it. The directory is made 0700."""
    check_name(name)
    names = _entries(d)
    path = clients_dir(d) / name
    if name in names:
        raise StateError(f"client {name} already exists on stack {d.stack} ({path}): revoke it first (`goldgate "
                         f"client revoke {name} --stack {d.stack}`) to give it a new token")
    if len(names) >= MAX_CLIENTS:
        raise StateError(f"stack {d.stack} has {len(names)} clients, the most a stack takes: revoke one no longer used "
                         f"(`goldgate client list --stack {d.stack}`)")
    directory = clients_dir(d)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # as `goldgate up` keeps them (StackDir.ensure): the stack's secrets are its owner's alone
    for private in (d.root, d.secrets_dir, directory):
        os.chmod(private, 0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise StateError(f"client {name} already exists on stack {d.stack} ({path}): revoke it first") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask took away from the mode asked for: the owner reads it
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return token


def revoke_client(d: StackDir, name: str) -> Path:
    """Remove `name`'s file (whatever it is: a symbolic link is removed, never followed); the path removed."""
    check_name(name)
    _directory(d)  # through a symbolic link, the file removed would be wherever it points
    path = clients_dir(d) / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        known = ", ".join(_entries(d)) or "none"
        raise StateError(f"stack {d.stack} has no client {name} (clients: {known})") from None
    if stat.S_ISDIR(info.st_mode):
        raise StateError(f"{path} is a directory, not a client's token file: remove it by hand")
    try:
        path.unlink()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise StateError(f"stack {d.stack} has no client {name}") from None
        raise
    return path


def list_clients(d: StackDir) -> list[ClientFile]:
    """Each client's name and when its file was written (its token is never read here)."""
    return [ClientFile(name, os.lstat(clients_dir(d) / name).st_mtime) for name in _entries(d, at_most=False)]
