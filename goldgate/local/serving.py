"""An HTTP server loop that sleeps while nobody calls: the local stack's emulators serve on it.

socketserver's `serve_forever(poll_interval)` wakes every `poll_interval` only to see whether `shutdown()` was called,
so its owner had to choose between CPU and a slow stop: the RunPod emulator polled 20 times a second (0.05 s, or every
`goldgate down` waited out the poll) for as long as the stack lived, and each worker's ComfyUI emulator 10 times. Here
`shutdown()` wakes the loop itself (a byte on a socket pair the loop also waits on): an idle server uses no CPU, and
a stop is seen at once.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any

# What socketserver itself waits with: poll(2) where there is one.
_Selector = selectors.PollSelector if hasattr(selectors, "PollSelector") else selectors.SelectSelector


class WokenOnShutdown:
    """A mixin for a socketserver server (before it in the bases): `serve_forever` waits for a connection or
    `shutdown()`, never on a timer. As with socketserver, `shutdown()` returns once the loop has ended (called before
    the loop starts, once it has started and ended at once): call it only while a thread runs, or is about to run,
    `serve_forever`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._shutdown_requested = False
        self._loop_ended = threading.Event()  # set as the loop ends: shutdown() waits for it, as socketserver's does
        try:
            super().__init__(*args, **kwargs)
        except BaseException:  # a port in use: no server, and no pair left open either
            self._wake_r.close()
            self._wake_w.close()
            raise

    def serve_forever(self, poll_interval: float | None = None) -> None:  # poll_interval: taken, not needed
        try:
            with _Selector() as selector:
                selector.register(self, selectors.EVENT_READ)  # type: ignore[arg-type]
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._shutdown_requested:
                    ready = selector.select()
                    if self._shutdown_requested:
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()  # type: ignore[attr-defined]
                    self.service_actions()  # type: ignore[attr-defined]
        finally:
            self._loop_ended.set()

    def shutdown(self) -> None:
        self._shutdown_requested = True
        try:
            self._wake_w.send(b"\0")
        except OSError:  # closed (server_close came first) or full: the loop is gone or already woken
            pass
        self._loop_ended.wait()

    def server_close(self) -> None:
        super().server_close()  # type: ignore[misc]
        self._wake_r.close()
        self._wake_w.close()
