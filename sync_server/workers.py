"""Several server processes on one port, for machines with more than one core.

One asyncio process runs Python on one core; parsing, hashing and judging a push is CPU work,
so a second process nearly doubles what a 2-core server applies (benchmarks/server_push.py).
Gunicorn's arbiter does the process part: it binds the port once, forks the workers, replaces
one that dies, and on SIGTERM lets each finish its requests; aiohttp's ``GunicornWebWorker``
runs the app in each worker. The workers share the database as separate server processes
always could: PostgreSQL by row locks, SQLite through :class:`~.storage.writer_lock.WriterLock`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from gunicorn.app.base import BaseApplication


class _Arbiter(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], make_app: Callable[[], web.Application]) -> None:
        self._options, self._make_app = options, make_app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # newer gunicorns add settings (the control socket)
                self.cfg.set(key, value)

    def load(self) -> web.Application:
        return self._make_app()  # in each worker, after the fork


def serve(host: str, port: int, workers: int, access_log_format: str,
          make_app: Callable[[], web.Application]) -> None:
    """Run ``workers`` processes until SIGTERM/SIGINT; returns only by SystemExit."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    _Arbiter({
        "bind": bind, "workers": workers, "worker_class": "aiohttp.GunicornWebWorker",
        "proc_name": "pos-server", "accesslog": "-", "errorlog": "-", "loglevel": "info",
        "access_log_format": access_log_format, "graceful_timeout": 30,
        # The ledger's worst request (a 1,000-sale push behind others on SQLite) takes well
        # under a second; a worker silent for 60 s is stuck and is replaced.
        "timeout": 60,
        # No control socket (gunicorn 24+ opens one in $HOME): signals are the interface.
        "control_socket_disable": True,
    }, make_app).run()
