"""Several server processes on one port, for machines with more than one core.

One asyncio process runs Python on one core; parsing, hashing and judging a push is CPU work,
so a second process nearly doubles what a 2-core server applies (benchmarks/server_push.py).
Gunicorn's arbiter does the process part: it binds the port once, forks the workers, replaces
one that dies, and on SIGTERM lets each finish its requests; aiohttp's ``GunicornWebWorker``
runs the app in each worker. The workers share the database as separate server processes
always could: PostgreSQL by row locks, SQLite through :class:`~.storage.writer_lock.WriterLock`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from gunicorn.app.base import BaseApplication

from .connections import GuardedRunner, listen_backlog
from .log_masking import mask_handlers

GRACEFUL_SECONDS = 30


class _Arbiter(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any],
                 make_runner: Callable[[], Awaitable[web.AppRunner]]) -> None:
        self._options, self._make_runner = options, make_runner
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key in self.cfg.settings:  # newer gunicorns add settings (the control socket)
                self.cfg.set(key, value)

    def load(self) -> Callable[[], Awaitable[web.AppRunner]]:
        # aiohttp's worker awaits this in each worker, after the fork, and serves the runner
        # it returns: ours listens through connections.GuardedServer.
        return self._make_runner


def serve(host: str, port: int, workers: int, access_log_format: str,
          make_app: Callable[[], web.Application], *, max_connections: int, retry_after: int,
          open_files: int, header_timeout: float, json_logs: bool = False) -> None:
    """Run ``workers`` processes until SIGTERM/SIGINT; returns only by SystemExit.

    Each worker serves through :class:`~.connections.GuardedRunner`, built here rather than by
    aiohttp's worker, so gunicorn's own ``keepalive``, ``access_log_format`` and
    ``worker_connections`` settings do not apply: the runner gets ours."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def make_runner() -> web.AppRunner:
        # In the worker, after gunicorn set up its own handlers: contacts masked there too.
        mask_handlers(logging.getLogger(), logging.getLogger("gunicorn.error"),
                      logging.getLogger("gunicorn.access"))
        return GuardedRunner(
            make_app(), max_connections=max_connections, retry_after=retry_after,
            open_files=open_files, keepalive_timeout=header_timeout,
            # JSON lines go through the root handler logs.configure set up (gunicorn's own
            # access handler would print only the message).
            access_log=logging.getLogger("sync_server.access" if json_logs else "gunicorn.access"),
            access_log_format=access_log_format,
            shutdown_timeout=GRACEFUL_SECONDS * 0.95)  # what aiohttp's worker gives its own

    _Arbiter({
        "bind": bind, "workers": workers, "worker_class": "aiohttp.GunicornWebWorker",
        "proc_name": "pos-server", "accesslog": None if json_logs else "-", "errorlog": "-",
        "loglevel": "info",
        # aiohttp's worker listens again with its own 128 (asyncio's listen on start):
        # connections.listen_backlog and the cap count with that.
        "graceful_timeout": GRACEFUL_SECONDS, "backlog": listen_backlog(open_files),
        # The ledger's worst request (a 1,000-sale push behind others on SQLite) takes well
        # under a second; a worker silent for 60 s is stuck and is replaced.
        "timeout": 60,
        # No control socket (gunicorn 24+ opens one in $HOME): signals are the interface.
        "control_socket_disable": True,
    }, make_runner).run()
