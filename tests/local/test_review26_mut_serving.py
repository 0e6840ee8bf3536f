"""goldgate.local.serving's server loop (the RunPod and ComfyUI emulators', the object store's) keeps socketserver's
contract for what its owner does around it: `shutdown()` returns only once the loop has ended (its owner closes the
server next), a closed server leaves no socket open, and a stop after the loop ended (werkzeug's loop closes its own
server as it ends) returns as socketserver's does. And an idle ComfyUI emulator's server does not wake at all."""

from __future__ import annotations

import socket
import socketserver
import threading

from goldgate.local import serving, stackhost

WAIT_S = 60.0  # a bound on waits for what must happen, never reached when it does


class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        pass


class _Server(serving.WokenOnShutdown, socketserver.ThreadingTCPServer):
    daemon_threads = True


class _Watched(threading.Event):
    """The loop's end, as shutdown() waits for it: `waited` is set once someone waits."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.set()
        return super().wait(timeout)


def test_shutdown_returns_only_once_the_loop_has_ended() -> None:
    order: list[str] = []
    release = threading.Event()

    class Held(_Server):
        def service_actions(self) -> None:  # the loop is held here, mid-turn, until the test lets it go
            release.wait(WAIT_S)

    server = Held(("127.0.0.1", 0), _Quiet)
    server._loop_ended = ended = _Watched()
    loop = threading.Thread(target=lambda: (server.serve_forever(), order.append("loop ended")), daemon=True)
    loop.start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=30):
            pass  # one request: the loop handles it, then is held in service_actions
        stopper = threading.Thread(target=lambda: (server.shutdown(), order.append("shutdown returned")),
                                   daemon=True)
        stopper.start()
        for _ in range(int(WAIT_S / 0.01)):  # until shutdown() waits for the held loop, or has returned without
            if ended.waited.is_set() or not stopper.is_alive():
                break
            threading.Event().wait(0.01)
        release.set()
        stopper.join(WAIT_S)
        loop.join(WAIT_S)
        assert order == ["loop ended", "shutdown returned"], order
    finally:
        release.set()
        server.server_close()


def test_a_closed_server_leaves_no_socket_open() -> None:
    server = _Server(("127.0.0.1", 0), _Quiet)
    loop = threading.Thread(target=server.serve_forever, daemon=True)
    loop.start()
    server.shutdown()
    server.server_close()
    assert server._wake_r.fileno() == -1 and server._wake_w.fileno() == -1, "the wake-up socket pair was left open"


def test_the_object_store_server_stopped_twice_stops_quietly() -> None:
    """werkzeug's loop closes its server as it ends: a second stop finds the wake-up pair closed."""
    server = stackhost.ObjectStoreServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    server.stop()
    server.stop()  # as moto's own server allows
    assert server._thread is not None and not server._thread.is_alive()
