"""The local server's listening sockets (stdlib only): its own, or one a parent keeps across restarts
(the local stack's host imports this without the server's dependencies)."""

from __future__ import annotations

import os
import socket

__all__ = ["StartupError", "inherited_socket", "listening_socket"]


class StartupError(RuntimeError):
    """The local server cannot start; the message says what to fix."""


def listening_socket(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every keep-alive response waits ~40 ms on the client's delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another port (0 = any free)") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket a parent passed as file descriptor `fd` (--listen-fd)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise StartupError(f"--listen-fd {fd} is not an open socket: {exc.strerror}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()  # not ours to close
        raise StartupError(f"--listen-fd {fd} is not a listening TCP socket")
    os.set_inheritable(fd, False)  # ours now: no process this one starts gets it
    sock.setblocking(False)
    return sock
