"""Running the app under uvicorn with a graceful stop on SIGTERM/SIGINT.

On the first SIGTERM or SIGINT uvicorn stops accepting connections, lets in-flight requests
finish (up to ``graceful_timeout_s``), then runs the app's shutdown, which drains the
batcher. uvicorn re-raises the signal after that; SIGTERM is absorbed here so a graceful
stop returns normally (exit code 0) instead of dying by the default handler.

Binding comes first (:func:`listen`), so a busy port fails before a model is loaded.

Example:
    >>> sock = listen("127.0.0.1", 8080)  # doctest: +SKIP
    >>> run_server(app, sock, graceful_timeout_s=30)  # doctest: +SKIP
"""

from __future__ import annotations

import signal
import socket
import threading
from types import FrameType

import uvicorn

from crossrank.errors import ConfigError
from crossrank.serving.limits import ASGIApp


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (``port=0``: any free port); ConfigError names the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_server(
    app: ASGIApp,
    *,
    graceful_timeout_s: float,
    access_log: bool = False,
    log_level: str = "info",
) -> uvicorn.Server:
    """A uvicorn server for ``app`` (one process: the model lives in this process)."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=graceful_timeout_s,  # type: ignore[arg-type]  # floats work
        server_header=False,
    )
    return uvicorn.Server(config)


def run_server(
    app: ASGIApp,
    sock: socket.socket,
    *,
    graceful_timeout_s: float,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve ``app`` on the listening ``sock`` until SIGTERM/SIGINT, then stop gracefully."""
    server = build_server(
        app, graceful_timeout_s=graceful_timeout_s, access_log=access_log, log_level=log_level
    )
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _absorb) if in_main else None
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _absorb(_sig: int, _frame: FrameType | None) -> None:
    """Receives uvicorn's re-raised SIGTERM after a graceful stop."""
